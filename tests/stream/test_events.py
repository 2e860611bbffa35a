import json

import pytest
from pydantic import ValidationError

from perception.findings import Finding, FrameFindings, ModelInfo
from stream.events import FindingsEvent, StatusEvent, findings_event, parse_server_event, server_event_schema


def _findings() -> FrameFindings:
    obj = Finding(
        label="polyp",
        score=0.87,
        box=(10, 20, 110, 90),
        outline=(((10, 20), (110, 20), (60, 90)),),
        track_id=4,
        area_px=3500,
    )
    return FrameFindings(model=ModelInfo("polyp", "1.0"), frame_size=(640, 480), objects=(obj,), inference_ms=7.25)


def test_findings_event_round_trip():
    event = findings_event("sample", 12, 3600, 1_700_000_000.5, _findings())
    parsed = parse_server_event(event.model_dump_json())
    assert isinstance(parsed, FindingsEvent)
    assert parsed == event
    obj = parsed.objects[0]
    assert (obj.label, obj.track_id, obj.box, obj.area_px) == ("polyp", 4, (10, 20, 110, 90), 3500)
    assert obj.outline == [[(10, 20), (110, 20), (60, 90)]]
    assert parsed.model.name == "polyp" and parsed.schema_version == "1.0"


def test_status_event_round_trip():
    event = StatusEvent(stream_id="s", ai_available=False, reason="model error: boom", time=1.0)
    assert parse_server_event(event.model_dump_json()) == event


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(type="nonsense"), "type"),
        (lambda d: d["objects"][0].update(score=1.5), "score"),
        (lambda d: d.update(frame_seq=0), "frame_seq"),
        (lambda d: d.update(schema_version="9.9"), "schema_version"),
        (lambda d: d.update(extra_field=1), "extra_field"),
        (lambda d: d["objects"][0].update(box=[1, 2, 3]), "box"),
    ],
)
def test_bad_events_are_rejected_naming_the_field(mutate, field):
    data = json.loads(findings_event("sample", 1, None, 0.0, _findings()).model_dump_json())
    mutate(data)
    with pytest.raises(ValidationError) as info:
        parse_server_event(json.dumps(data))
    assert field in str(info.value)


def test_schema_describes_both_event_types():
    schema = server_event_schema()
    text = json.dumps(schema)
    assert "FindingsEvent" in text and "StatusEvent" in text
    assert schema["discriminator"]["propertyName"] == "type"
