"""Named model factories, so configuration can pick a model by name."""

from __future__ import annotations

from collections.abc import Callable

from perception.model import FrameModel, ModelError

ModelFactory = Callable[[], FrameModel]


class ModelRegistry:
    """Maps model names to factories; one registry per application, no globals."""

    def __init__(self) -> None:
        self._factories: dict[str, ModelFactory] = {}

    def register(self, name: str, factory: ModelFactory) -> None:
        if name in self._factories:
            raise ValueError(f"model {name!r} is already registered")
        self._factories[name] = factory

    def names(self) -> list[str]:
        return sorted(self._factories)

    def create(self, name: str) -> FrameModel:
        try:
            factory = self._factories[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ModelError(f"unknown model {name!r}; registered models: {known}") from None
        return factory()
