"""Weighting a training source up (``--oversample``): parsing, the epoch's draws, and bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

from perception import datasets
from perception.training import epoch_pool, main, parse_oversample


def test_each_image_of_an_oversampled_source_is_drawn_that_many_times_an_epoch() -> None:
    sources = ["kvasir-seg", "cvc-clinicdb", "kvasir-seg", "cvc-clinicdb", "cvc-clinicdb"]
    pool = epoch_pool(sources, {"cvc-clinicdb": 3})
    counts = np.bincount(pool, minlength=len(sources))
    assert counts.tolist() == [1, 3, 1, 3, 3]


def test_without_oversampling_an_epoch_sees_every_image_once() -> None:
    pool = epoch_pool(["fuseg"] * 4, {})
    assert sorted(pool.tolist()) == [0, 1, 2, 3]
    assert epoch_pool([], {}).size == 0


def test_a_well_formed_spec_is_parsed_per_source() -> None:
    known = datasets.TASK_SOURCES["polyp"]
    assert parse_oversample(["cvc-clinicdb=2", "kvasir-seg=1"], known) == {"cvc-clinicdb": 2, "kvasir-seg": 1}


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        ("cvc-clinicdb", "expected SOURCE=N"),
        ("cvc-clinicdb=two", "expected SOURCE=N"),
        ("cvc-clinicdb=0", "at least 1"),
        ("fuseg=2", "no source 'fuseg' in this task (has kvasir-seg, cvc-clinicdb)"),
    ],
)
def test_a_bad_spec_is_refused_with_what_is_wrong(spec: str, names: str) -> None:
    with pytest.raises(ValueError, match=re.escape(names)):
        parse_oversample([spec], datasets.TASK_SOURCES["polyp"])


def test_the_command_line_answers_a_bad_spec_with_a_message_not_a_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--task", "wound", "--oversample", "cvc-clinicdb=2"]) == 2
    err = capsys.readouterr().err
    assert "no source 'cvc-clinicdb' in this task (has fuseg)" in err
