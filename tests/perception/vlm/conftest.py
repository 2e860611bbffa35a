from __future__ import annotations

import pytest

from perception.findings import Finding, FrameFindings, ModelInfo


@pytest.fixture
def wound_findings() -> FrameFindings:
    """A 640×480 frame: a wound upper left, an instrument upper centre just right of it."""
    return FrameFindings(
        model=ModelInfo("wound-seg", "2.1", labels=("wound", "instrument")),
        frame_size=(640, 480),
        objects=(
            Finding("wound", 0.91, (20, 20, 200, 160), area_px=18000, track_id=3),
            Finding("instrument", 0.80, (210, 30, 400, 100), area_px=5000),
        ),
    )
