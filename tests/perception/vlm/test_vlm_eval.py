from __future__ import annotations

import json

import numpy as np
import pytest

from perception.vlm import evaluate
from perception.vlm.evaluate import DATA_ROOT, mask_findings


def test_mask_findings_components():
    mask = np.zeros((100, 100), np.uint8)
    mask[0:20, 0:20] = 255
    mask[80:90, 70:95] = 255
    mask[50, 50] = 255  # speck below MIN_COMPONENT_FRAC: ignored
    ff = mask_findings(mask, "wound")
    assert sorted(f.box for f in ff.objects) == [(0, 0, 20, 20), (70, 80, 95, 90)]


@pytest.mark.data
@pytest.mark.skipif(not DATA_ROOT.is_dir(), reason=f"no data at {DATA_ROOT}")
def test_eval_grounded_small(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert evaluate.main(["--limit", "3", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["overall"]["n"] >= 10 and result["overall"]["accuracy"] >= 0.9
    assert "presence" in capsys.readouterr().out
