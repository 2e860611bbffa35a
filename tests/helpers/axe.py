"""axe-core accessibility checks in Playwright pages: inject the npm package (tests/a11y, installed by
scripts/install.sh) and report the violations a user would be stopped by (serious and critical)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = frozenset({"serious", "critical"})


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]

    def __str__(self) -> str:
        return f"{self.impact} {self.rule}: {self.help} at {', '.join(self.targets[:5])}"


def require_axe() -> str:
    if not AXE_JS.is_file():
        pytest.skip("axe-core is not installed (npm ci --prefix tests/a11y; scripts/install.sh does it)")
    return AXE_JS.read_text()


async def blocking_violations(page: Any, context: str = "document") -> list[Violation]:
    """Serious and critical axe violations of the page as it is now (WCAG 2.x A and AA rules and best practice).

    The source goes in through page.evaluate, which the pages' content security policy does not apply to (an
    injected <script> tag would be refused, as it should be)."""
    source = require_axe()
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        await page.evaluate(source)
    result = await page.evaluate(
        """async (ctx) => await axe.run(ctx === 'document' ? document : document.querySelector(ctx),
               { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } })""",
        context,
    )
    return [
        Violation(v["id"], v["impact"], v["help"], [",".join(n["target"]) for n in v["nodes"]])
        for v in result["violations"]
        if v["impact"] in BLOCKING
    ]


async def assert_accessible(page: Any, name: str) -> None:
    found = await blocking_violations(page)
    assert not found, f"{name}: " + "; ".join(str(v) for v in found)
