"""Checkpoints that cannot be used are refused with a reason, at export and on --resume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    from perception.export import CheckpointError, load_checkpoint_net
    from perception.nets import LiteUNet

    path = tmp_path / "other.pt"
    small = LiteUNet(enc=(8, 8, 8, 8, 8), dec=(8, 8, 8, 8), depth=(1, 1, 1, 1))
    torch.save({"arch": {"arch": "liteunet"}, "model": small.state_dict(), "config": {}}, path)
    with pytest.raises(CheckpointError, match="does not fit architecture 'liteunet'"):
        load_checkpoint_net(path)


def test_file_that_is_not_a_checkpoint_is_named(tmp_path):
    from perception.export import CheckpointError, load_checkpoint_net

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint_net(junk)
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    with pytest.raises(CheckpointError, match="not a scopecast training checkpoint"):
        load_checkpoint_net(foreign)


def test_export_command_reports_a_bad_checkpoint_without_a_traceback(tmp_path, capsys):
    from perception.export import main

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {}}, foreign)
    assert main(["--checkpoint", str(foreign), "--name", "x", "--out-dir", str(tmp_path)]) == 2
    assert "export failed: " in capsys.readouterr().err
