"""Trackers keeping object identities across the frames of one stream: `MotionTracker` (the default, ByteTrack-style)
and the earlier greedy `IouTracker` (kept for comparison in `scopecast eval tracking --tracker iou`).

IouTracker:

Each frame's boxes are matched greedily (highest IoU first) to the live tracks
of the same label; a match needs IoU >= ``iou_threshold``. Unmatched boxes start
new tracks with fresh ids (1, 2, 3, ... per tracker). A track that finds no box
survives ``max_missed`` frames (so a one-frame dropout keeps its id), then ends.

A tracker holds the state of one stream: give each stream its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from perception.metrics import box_iou


def _float_box(box: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return x0, y0, x1, y1


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

    def update(
        self,
        boxes: Sequence[Sequence[float]],
        labels: Sequence[str] | None = None,
        scores: Sequence[float] | None = None,
    ) -> list[int]:
        """Match this frame's boxes to tracks; returns one track id per box, in order (`scores` are not used)."""
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
            t.box, t.missed = _float_box(boxes[bi]), 0
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
                t = Track(self._next_id, labels[bi], _float_box(b))
                self._next_id += 1
                self._tracks.append(t)
                ids[bi] = t.track_id
        return [int(i) for i in ids]  # type: ignore[arg-type]  # every box was given an id just above


@dataclass(eq=False)  # tracks are compared by identity
class _MotionTrack:
    label: str
    state: np.ndarray  # cx, cy, w, h, vx, vy, vw, vh (pixels, per model call)
    covariance: np.ndarray
    serial: int  # unique for the tracker's life: what evaluation counts (display ids are reused)
    last_box: tuple[float, float, float, float]  # where it was last seen (the prediction may have overshot)
    hits: int = 1
    lost: int = 0
    display_id: int | None = None  # shown once confirmed


class MotionTracker:
    """ByteTrack-style tracking for a stream's findings: objects keep their id across frames, dropouts and skipped
    model runs.

    Each track's box moves by a constant-velocity Kalman filter between model runs. Detections are matched to the
    tracks in three rounds, each greedy by overlap: confident detections (score >= ``high_score``) by IoU, then the
    weaker ones by IoU (ByteTrack's second association: a polyp seen with less confidence is still the same polyp),
    then what is left by centre distance (a low-frame-rate scope moves further than boxes overlap). Each round
    measures from the predicted box and from the box last seen, whichever is nearer: an endoscope moves in jerks, and
    after one the velocity overshoots where the polyp stopped. A track
    shows an id only once it was matched ``min_hits`` times (a one-frame speck never gets a number) and keeps it
    through ``max_lost`` runs without a match. Ids are the lowest numbers free among live tracks, so labels stay
    short ("polyp 1", "polyp 2") instead of counting up for ever.
    """

    def __init__(
        self,
        *,
        high_score: float = 0.6,
        min_iou: float = 0.05,
        max_centre_distance: float = 2.5,
        min_hits: int = 5,
        max_lost: int = 75,
    ) -> None:
        """Defaults chosen with `scopecast eval tracking` on CVC-ClinicDB sequences and the bundled clip (see the
        polyp model card): a polyp gets its number after 5 runs and keeps it through 75 runs unseen (3 s at 25/s);
        between two runs on CVC frames a polyp moves up to about 2.5 times its size."""
        self.high_score = high_score
        self.min_iou = min_iou
        self.max_centre_distance = max_centre_distance  # in units of the track's larger side
        self.min_hits = min_hits
        self.max_lost = max_lost
        self._tracks: list[_MotionTrack] = []
        self._serials = 0
        self.last_serials: list[int | None] = []  # per box of the last update: its confirmed track's serial

    def reset(self) -> None:
        self._tracks.clear()
        self._serials = 0
        self.last_serials = []

    @property
    def tracks(self) -> tuple[_MotionTrack, ...]:
        return tuple(self._tracks)

    def update(
        self,
        boxes: Sequence[Sequence[float]],
        labels: Sequence[str] | None = None,
        scores: Sequence[float] | None = None,
    ) -> list[int | None]:
        """Match this run's boxes to tracks; one display id per box, in order (None until a track is confirmed)."""
        labels = list(labels) if labels is not None else [""] * len(boxes)
        scores = list(scores) if scores is not None else [1.0] * len(boxes)
        if not len(labels) == len(scores) == len(boxes):
            raise ValueError("boxes, labels and scores must have the same length")
        for track in self._tracks:
            _predict(track)
        assigned: dict[int, _MotionTrack] = {}
        free = list(self._tracks)
        strong = [i for i, s in enumerate(scores) if s >= self.high_score]
        weak = [i for i, s in enumerate(scores) if s < self.high_score]
        for candidates, by_distance in ((strong, False), (weak, False), (strong + weak, True)):
            pending = [i for i in candidates if i not in assigned]
            for i, track in self._match(pending, free, boxes, labels, by_distance):
                assigned[i] = track
                free.remove(track)
                _correct(track, np.asarray(_xywh(boxes[i]), float))
                track.last_box = _float_box(boxes[i])
                track.hits += 1
                track.lost = 0
        for track in free:
            track.lost += 1
        self._tracks = [t for t in self._tracks if t.lost <= self.max_lost]
        for i in strong:  # only confident detections start tracks
            if i not in assigned:
                self._serials += 1
                track = _new_track(labels[i], boxes[i], self._serials)
                self._tracks.append(track)
                assigned[i] = track
        for track in self._tracks:
            if track.display_id is None and track.hits >= self.min_hits:
                track.display_id = self._lowest_free_id(track.label)
        shown = [assigned.get(i) for i in range(len(boxes))]
        self.last_serials = [t.serial if t is not None and t.display_id is not None else None for t in shown]
        return [t.display_id if t is not None else None for t in shown]

    def _match(
        self,
        pending: list[int],
        tracks: list[_MotionTrack],
        boxes: Sequence[Sequence[float]],
        labels: list[str],
        by_distance: bool,
    ) -> Iterator[tuple[int, _MotionTrack]]:
        pairs = []
        for i in pending:
            for track in tracks:
                if track.label != labels[i]:
                    continue
                if by_distance:
                    cx, cy = (boxes[i][0] + boxes[i][2]) / 2, (boxes[i][1] + boxes[i][3]) / 2
                    reach = self.max_centre_distance * max(track.state[2], track.state[3], 1.0)
                    seen_x, seen_y = (
                        (track.last_box[0] + track.last_box[2]) / 2,
                        (track.last_box[1] + track.last_box[3]) / 2,
                    )
                    # from the predicted centre or from where it was last seen: a scope that jerked one way
                    # between runs often stops, and the velocity then overshoots
                    distance = min(
                        ((cx - track.state[0]) ** 2 + (cy - track.state[1]) ** 2) ** 0.5,
                        ((cx - seen_x) ** 2 + (cy - seen_y) ** 2) ** 0.5,
                    )
                    if distance <= reach:
                        pairs.append((-distance / reach, i, track))
                else:
                    overlap = max(box_iou(_box(track.state), boxes[i]), box_iou(track.last_box, boxes[i]))
                    if overlap >= self.min_iou:
                        pairs.append((overlap, i, track))
        pairs.sort(key=lambda p: -p[0])
        used_boxes: set[int] = set()
        used_tracks: set[int] = set()
        for _, i, track in pairs:
            if i in used_boxes or id(track) in used_tracks:
                continue
            used_boxes.add(i)
            used_tracks.add(id(track))
            yield i, track

    def _lowest_free_id(self, label: str) -> int:
        taken = {t.display_id for t in self._tracks if t.label == label and t.display_id is not None}
        n = 1
        while n in taken:
            n += 1
        return n


def _xywh(box: Sequence[float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    return (x0 + x1) / 2, (y0 + y1) / 2, max(1.0, x1 - x0), max(1.0, y1 - y0)


def _box(state: np.ndarray) -> tuple[float, float, float, float]:
    cx, cy, w, h = (float(v) for v in state[:4])
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


# Constant velocity: each model run moves the box by its velocity.
_TRANSITION = np.eye(8)
_TRANSITION[:4, 4:] = np.eye(4)
_MEASURE = np.hstack([np.eye(4), np.zeros((4, 4))])


def _new_track(label: str, box: Sequence[float], serial: int) -> _MotionTrack:
    cx, cy, w, h = _xywh(box)
    state = np.array([cx, cy, w, h, 0, 0, 0, 0], float)
    scale = max(w, h)
    covariance = np.diag([scale, scale, scale, scale, 10 * scale, 10 * scale, scale, scale]) ** 2 * 0.01
    return _MotionTrack(label, state, covariance, serial, _float_box(box))


def _predict(track: _MotionTrack) -> None:
    f = _TRANSITION
    scale = max(float(track.state[2]), float(track.state[3]), 1.0)
    process = (0.05 * scale) ** 2
    track.state = f @ track.state
    track.covariance = f @ track.covariance @ f.T + process * np.eye(8)
    track.state[2] = max(1.0, track.state[2])
    track.state[3] = max(1.0, track.state[3])


def _correct(track: _MotionTrack, measured: np.ndarray) -> None:
    h = _MEASURE
    scale = max(float(measured[2]), float(measured[3]), 1.0)
    noise = np.eye(4) * (0.1 * scale) ** 2
    s = h @ track.covariance @ h.T + noise
    gain = track.covariance @ h.T @ np.linalg.inv(s)
    track.state = track.state + gain @ (measured - h @ track.state)
    track.covariance = (np.eye(8) - gain @ h) @ track.covariance
