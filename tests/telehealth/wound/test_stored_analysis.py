"""The stored analysis record: one typed shape from the pipeline to the database and back, old rows still readable."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from wound_synth import wound_scene

from telehealth.wound import StoredAnalysis, analyse_wound_photo, fixed_mask_segmenter


@pytest.fixture(scope="module")
def analysis():
    scene = wound_scene()
    return analyse_wound_photo(scene.rgb, fixed_mask_segmenter(scene.mask, "truth", "1"), marker_mm=20.0)


def test_a_stored_analysis_round_trips_through_json(analysis):
    stored = StoredAnalysis(status="analysed", assessment=analysis.assessment())
    back = StoredAnalysis.model_validate(stored.model_dump(mode="json"))
    assert back == stored and back.version == 2
    assert back.assessment is not None and back.assessment.wound_box == analysis.wound_box
    assert back.assessment.measurement.area_cm2 == pytest.approx(analysis.measurement.area_cm2)


def test_a_version_1_row_is_upgraded_on_read(analysis):
    # What the first build wrote: the analysis with an evidence summary, the wound box beside it, no score.
    v1_analysis = analysis.model_dump(
        mode="json", exclude={"evidence": {"overlay_png"}, "wound_box": True, "wound_score": True}
    )
    v1_analysis["schema_version"] = "1"
    row = {"status": "analysed", "analysis": v1_analysis, "wound_box": list(analysis.wound_box)}
    stored = StoredAnalysis.model_validate(row)
    assert stored.assessment is not None
    assert stored.assessment.wound_box == analysis.wound_box and stored.assessment.wound_score is None
    assert stored.assessment.schema_version == "1"
    refused = StoredAnalysis.model_validate({"status": "not_analysed", "reason": "not analysed: no model"})
    assert refused.assessment is None and refused.reason == "not analysed: no model"


def test_status_and_assessment_must_agree(analysis):
    with pytest.raises(ValidationError, match="must carry an assessment"):
        StoredAnalysis(status="analysed")
    with pytest.raises(ValidationError, match="must not carry an assessment"):
        StoredAnalysis(status="failed", reason="x", assessment=analysis.assessment())
