"""Image embeddings from the shipped models: unit vectors of the stated size, deterministic, and the segmentation
outputs of the shipped graphs unchanged by the added ``embedding`` output."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
from perception_testutil import TOY_META, make_onnx, red_frame, shipped  # noqa: E402

from perception import ModelError  # noqa: E402
from perception.builtin import shipped_embedder  # noqa: E402
from perception.embedder import OnnxImageEmbedder  # noqa: E402
from perception.embedding import ImageEmbedder, ImageEmbedding  # noqa: E402
from perception.segmentation_model import SegmentationModel  # noqa: E402

MODELS = ("polyp", "wound")


def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [
        red_frame(640, 480, [(100, 100, 300, 260)]),
        rng.integers(0, 256, (289, 385, 3), dtype=np.uint8),
        np.clip(rng.normal(120, 40, (256, 256, 3)), 0, 255).astype(np.uint8),
    ]


@pytest.mark.parametrize("name", MODELS)
def test_shipped_embedder_gives_unit_vectors_of_its_stated_size(name):
    path = shipped(name)
    meta = json.loads(path.with_suffix(".json").read_text())
    emb: ImageEmbedder = shipped_embedder(name, device="cpu")
    assert emb.model_name == name
    assert emb.model_version == f"{name}-{meta['version']}+{meta['embedding']['version']}"
    assert emb.dim == meta["embedding"]["dim"] == 112
    got = [emb.embed(f) for f in frames()]
    for e in got:
        assert isinstance(e, ImageEmbedding) and e.vector.dtype == np.float32 and e.vector.shape == (emb.dim,)
        assert e.dim == emb.dim and e.model_version == emb.model_version
        assert abs(float(e.vector @ e.vector) - 1.0) < 1e-5
    again = emb.embed(frames()[1])
    assert np.array_equal(again.vector, got[1].vector)  # same image, same vector
    assert float(got[0].vector @ got[1].vector) < 0.999  # different images, different vectors
    assert isinstance(emb, OnnxImageEmbedder)
    batch = emb.embed_batch(frames())
    assert all(np.allclose(b.vector, g.vector, atol=1e-5) for b, g in zip(batch, got))
    assert emb.embed_batch([]) == []
    with pytest.raises(ModelError, match="frame"):
        emb.embed(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize("name", MODELS)
def test_added_embedding_leaves_the_segmentation_outputs_bit_identical(name):
    """The shipped graph against itself with the embedding nodes taken out: logits and gate identical."""
    onnx = pytest.importorskip("onnx")
    from perception.export_embedding import EMBEDDING_OUTPUT, check_unchanged

    path = shipped(name)
    with_emb = onnx.load(str(path))
    assert EMBEDDING_OUTPUT in [o.name for o in with_emb.graph.output]
    without = onnx.load(str(path))
    keep = [n for n in without.graph.node if not n.name.startswith("/embedding/")]
    assert len(keep) == len(without.graph.node) - 2
    del without.graph.node[:]
    without.graph.node.extend(keep)
    outs = [o for o in without.graph.output if o.name != EMBEDDING_OUTPUT]
    del without.graph.output[:]
    without.graph.output.extend(outs)
    model = SegmentationModel(path, threads=1, device="cpu")
    batch = np.stack([model._preprocess(f) for f in frames()])
    check_unchanged(without.SerializeToString(), with_emb.SerializeToString(), batch)  # raises on any difference
    assert path.stat().st_size - len(without.SerializeToString()) < 4096  # a few hundred bytes of nodes and metadata


def test_export_tool_is_idempotent_on_a_toy_graph(tmp_path):
    """With a named tensor (the toy graph has no decoder to find one by), run twice: same file, embedder works."""
    from perception.export_embedding import main

    path = make_onnx(tmp_path / "toy.onnx", sidecar=TOY_META)
    assert main([str(path), "--tensor", "image"]) == 0
    first = path.read_bytes()
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["embedding"]["dim"] == 3 and meta["embedding"]["tensor"] == "image"
    assert meta["onnx_bytes"] == len(first)
    assert main([str(path), "--tensor", "image"]) == 0
    assert path.read_bytes() == first
    emb = OnnxImageEmbedder(path, device="cpu")
    assert emb.model_version == "toy-9.9+emb1" and emb.dim == 3
    v = emb.embed(red_frame(64, 64, [(0, 0, 64, 64)])).vector  # pure red: the pooled RGB is (1, 0, 0)
    assert np.allclose(v, [1.0, 0.0, 0.0], atol=1e-6)
    assert main([str(path)]) == 2  # no Resize to find the feature map by: a clear error, not a traceback


def test_models_without_an_embedding_are_refused_with_the_fix(tmp_path):
    path = make_onnx(tmp_path / "toy.onnx", sidecar=TOY_META)
    with pytest.raises(ModelError, match="perception.export_embedding"):
        OnnxImageEmbedder(path, device="cpu")
    with pytest.raises(ModelError, match="no shipped model named 'nope'"):
        shipped_embedder("nope")
