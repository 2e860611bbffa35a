import numpy as np

from overlay.draw import OverlayState, draw_overlay
from overlay.palette import STATUS_UNAVAILABLE_BGR
from perception.findings import Finding, FrameFindings, ModelInfo


def _frame(w: int = 640, h: int = 480) -> np.ndarray:
    return np.full((h, w, 3), 100, dtype=np.uint8)


def _findings(frame_size=(640, 480)) -> FrameFindings:
    box = (200, 150, 400, 330)
    outline = (((200, 150), (400, 150), (400, 330), (200, 330)),)
    obj = Finding("polyp", 0.91, box, outline, track_id=2, area_px=36000)
    return FrameFindings(ModelInfo("polyp", "1"), frame_size, (obj,))


def test_finding_is_tinted_inside_and_outlined_while_far_pixels_stay():
    frame = _frame()
    draw_overlay(frame, OverlayState(findings=_findings()))
    inside = frame[240, 300]
    assert not np.array_equal(inside, [100, 100, 100]), "mask fill must tint the inside"
    assert frame[150, 300].max() > 200 or frame[151, 300].max() > 200, "contour/box line drawn on the edge"
    assert np.array_equal(frame[450, 50], [100, 100, 100]), "pixels far from findings and readouts are untouched"


def test_findings_scale_to_the_output_size():
    frame = _frame(1280, 960)
    draw_overlay(frame, OverlayState(findings=_findings(frame_size=(640, 480))))
    assert not np.array_equal(frame[480, 600], [100, 100, 100])  # centre of the doubled box
    assert np.array_equal(frame[100, 100], [100, 100, 100])


def test_unavailable_shows_red_banner_and_hides_findings():
    frame = _frame()
    draw_overlay(frame, OverlayState(findings=_findings(), ai_available=False, status_text="model error"))
    assert np.array_equal(frame[2, 600], STATUS_UNAVAILABLE_BGR)
    assert np.array_equal(frame[240, 300], [100, 100, 100]), "no findings drawn while AI is unavailable"


def test_fully_faded_findings_are_not_drawn():
    frame = _frame()
    draw_overlay(frame, OverlayState(findings=_findings(), opacity=0.0))
    assert np.array_equal(frame[240, 300], [100, 100, 100])


def test_half_faded_fill_is_weaker_than_fresh():
    fresh, faded = _frame(), _frame()
    draw_overlay(fresh, OverlayState(findings=_findings(), opacity=1.0))
    draw_overlay(faded, OverlayState(findings=_findings(), opacity=0.5))
    delta = lambda f: np.abs(f[240, 300].astype(int) - 100).sum()  # noqa: E731
    assert 0 < delta(faded) < delta(fresh)


def test_latency_readout_is_drawn_bottom_right():
    frame = _frame()
    draw_overlay(frame, OverlayState(findings=None, latency_text="AI 12 ms | age 30 ms"))
    corner = frame[440:480, 480:640]
    assert (corner == 0).any() and (corner == 255).any()
