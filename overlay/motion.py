"""Carry findings from the frame the model saw onto a later (or earlier) frame, by the motion between the two.

Dense optical flow (OpenCV's DIS, ultrafast preset) on small grey thumbnails costs about a millisecond; each outline
vertex moves with the flow around it. The flow is trusted only where it is consistent: the flow forward and the flow
back must cancel (forward-backward error) and the first thumbnail warped by it must match the second (photometric
residual), over the frame (a cut to another scene; a camera that changed resolution cannot be compared at all) and
inside each object's box. Where it is not, nothing is carried and the caller draws nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import cast

import cv2
import numpy as np
import numpy.typing as npt

from perception.findings import Finding, FrameFindings

THUMB_WIDTH = 192  # flow resolution: enough for tissue motion, ~1 ms a pair on one core


@dataclass(frozen=True)
class MotionLimits:
    """When a flow is trusted. Chosen on CVC-ClinicDB sequences (consecutive frames: median forward-backward error
    0.2-2.9 thumbnail pixels, residual at most 0.29 of the image's contrast; frames of different sequences: 4.9-13.8
    pixels, residual up to 0.7)."""

    max_fb_error_px: float = 4.0  # median |forward + backward flow| over the frame, thumbnail pixels
    max_relative_residual: float = 0.4  # mean |difference| after warping, as a share of the frame's contrast (std)
    max_object_fb_error_px: float = 5.0  # the same median inside an object's box
    max_shift_frac: float = 0.25  # a vertex moving more than this share of the frame width is not followed


@dataclass(frozen=True)
class Motion:
    """Flow from thumbnail `a` to thumbnail `b` (pixels of the thumbnail), and how well it explains `b`."""

    flow: npt.NDArray[np.float32]  # H x W x 2: a pixel at (x, y) in a is at (x, y) + flow in b
    fb_error: npt.NDArray[np.float32]  # H x W: |flow a->b + flow b->a at the arrival point|, 0 where the two agree
    fb_median: float
    relative_residual: float  # mean |a warped onto b - b| / std(b)
    scale: float  # thumbnail pixels per frame pixel


def thumbnail(grey: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A small grey image of a frame (H x W uint8), the only input motion estimation needs."""
    height, width = grey.shape[:2]
    scale = THUMB_WIDTH / width
    size = (THUMB_WIDTH, max(8, round(height * scale)))
    # Resizing keeps the 8-bit depth; OpenCV's stubs type every result as any numeric array.
    return cast("npt.NDArray[np.uint8]", cv2.resize(grey, size, interpolation=cv2.INTER_AREA))


def estimate_motion(a: npt.NDArray[np.uint8], b: npt.NDArray[np.uint8], frame_width: int) -> Motion | None:
    """Motion from thumbnail `a` to thumbnail `b`; None when they cannot be compared (sizes differ)."""
    if a.shape != b.shape:
        return None
    # Not thread-safe: one per call.
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)  # type: ignore[attr-defined]  # cv2 stubs lack DISOpticalFlow_create
    forward = dis.calc(a, b, None)
    back = dis.calc(b, a, None)
    height, width = a.shape
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    # Where a pixel of a lands in b, the flow back must point home again; unrelated images fail this everywhere.
    back_at_arrival = cv2.remap(
        back, grid_x + forward[..., 0], grid_y + forward[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    fb_error = np.hypot(forward[..., 0] + back_at_arrival[..., 0], forward[..., 1] + back_at_arrival[..., 1])
    a_on_b = cv2.remap(
        a, grid_x + back[..., 0], grid_y + back[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    residual = float(cv2.absdiff(a_on_b, b).mean())
    contrast = max(1.0, float(b.std()))
    return Motion(forward, fb_error, float(np.median(fb_error)), residual / contrast, width / frame_width)


def carry(
    findings: FrameFindings, motion: Motion | None, limits: MotionLimits = MotionLimits()
) -> FrameFindings | None:
    """`findings` moved by `motion`, or None when the motion cannot be trusted for the frame as a whole.

    Objects whose own region does not match are dropped (better no outline than one off the tissue).
    """
    if (
        motion is None
        or motion.fb_median > limits.max_fb_error_px
        or motion.relative_residual > limits.max_relative_residual
    ):
        return None
    moved = tuple(
        obj for obj in (_carry_object(o, motion, findings.frame_size, limits) for o in findings.objects) if obj
    )
    return dataclasses.replace(findings, objects=moved)


def _carry_object(obj: Finding, motion: Motion, frame_size: tuple[int, int], limits: MotionLimits) -> Finding | None:
    s = motion.scale
    height, width = motion.flow.shape[:2]
    x0, y0, x1, y1 = (int(v * s) for v in obj.box)
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, max(x0 + 1, x1)), min(height, max(y0 + 1, y1))
    if float(np.median(motion.fb_error[y0:y1, x0:x1])) > limits.max_object_fb_error_px:
        return None
    box_flow = motion.flow[y0:y1, x0:x1].reshape(-1, 2)
    shift = np.median(box_flow, axis=0) / s  # frame pixels
    max_shift = limits.max_shift_frac * frame_size[0]
    if float(np.hypot(*shift)) > max_shift:
        return None
    polygons = []
    for polygon in obj.outline:
        points = np.asarray(polygon, dtype=np.float32)
        if len(points) == 0:
            continue
        tx = np.clip((points[:, 0] * s).round().astype(int), 0, width - 1)
        ty = np.clip((points[:, 1] * s).round().astype(int), 0, height - 1)
        # Each vertex follows the flow at its place, bounded to the object's own motion so a noisy vector
        # at an edge cannot throw one point across the frame.
        delta = np.clip(motion.flow[ty, tx] / s, shift - max_shift / 4, shift + max_shift / 4)
        moved = points + delta
        moved[:, 0] = np.clip(moved[:, 0], 0, frame_size[0] - 1)
        moved[:, 1] = np.clip(moved[:, 1], 0, frame_size[1] - 1)
        polygons.append(tuple((int(round(x)), int(round(y))) for x, y in moved))
    if polygons:
        xs = [x for poly in polygons for x, _ in poly]
        ys = [y for poly in polygons for _, y in poly]
        box = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    else:
        dx, dy = (int(round(v)) for v in shift)
        box = (obj.box[0] + dx, obj.box[1] + dy, obj.box[2] + dx, obj.box[3] + dy)
    return dataclasses.replace(obj, box=box, outline=tuple(polygons))
