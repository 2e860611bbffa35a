"""A small IoU tracker: keeps object identities across consecutive frames of one stream.

Each frame's boxes are matched greedily (highest IoU first) to the live tracks
of the same label; a match needs IoU >= ``iou_threshold``. Unmatched boxes start
new tracks with fresh ids (1, 2, 3, ... per tracker). A track that finds no box
survives ``max_missed`` frames (so a one-frame dropout keeps its id), then ends.

A tracker holds the state of one stream: give each stream its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from perception.metrics import box_iou


@dataclass
class Track:
    track_id: int
    label: str
    box: tuple[float, float, float, float]
    missed: int = 0
    hits: int = 1


class IouTracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 5) -> None:
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
        self.iou_threshold = iou_threshold
        self.max_missed = max_missed
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def tracks(self) -> tuple[Track, ...]:
        return tuple(self._tracks)

    def reset(self) -> None:
        """Forget all tracks (new stream / scene cut); ids restart at 1."""
        self._tracks.clear()
        self._next_id = 1

    def update(self, boxes: Sequence[Sequence[float]], labels: Sequence[str] | None = None) -> list[int]:
        """Match this frame's boxes to tracks; returns one track id per box, in order."""
        labels = list(labels) if labels is not None else [""] * len(boxes)
        if len(labels) != len(boxes):
            raise ValueError("boxes and labels must have the same length")
        pairs = []
        for ti, t in enumerate(self._tracks):
            for bi, (b, lab) in enumerate(zip(boxes, labels)):
                if lab == t.label:
                    o = box_iou(t.box, b)
                    if o >= self.iou_threshold:
                        pairs.append((o, ti, bi))
        pairs.sort(key=lambda p: -p[0])
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for _, ti, bi in pairs:
            if ti in used_tracks or ids[bi] is not None:
                continue
            t = self._tracks[ti]
            t.box, t.missed = tuple(map(float, boxes[bi])), 0
            t.hits += 1
            ids[bi] = t.track_id
            used_tracks.add(ti)
        survivors = []
        for ti, t in enumerate(self._tracks):
            if ti not in used_tracks:
                t.missed += 1
            if t.missed <= self.max_missed:
                survivors.append(t)
        self._tracks = survivors
        for bi, b in enumerate(boxes):
            if ids[bi] is None:
                t = Track(self._next_id, labels[bi], tuple(map(float, b)))
                self._next_id += 1
                self._tracks.append(t)
                ids[bi] = t.track_id
        return [int(i) for i in ids]  # type: ignore[arg-type]
