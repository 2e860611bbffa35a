"""The content gate: does a frame look like what the model was trained on?

A segmentation model answers for every input, including frames it has never
seen the like of (a laparoscopy view fed to the colonoscopy polyp model). The
gate scores each frame by the squared Mahalanobis distance of its pooled
encoder features (``EfficientLiteUNet.forward_with_embedding``: the 1/16 and
1/32 feature maps averaged over space) from the training images' features:
a Gaussian fitted to the training set with Ledoit-Wolf shrinkage (the feature
count is close to the image count, so the plain covariance is singular).
The threshold is a high percentile of the *validation* images' distances.

The fitted mean and precision matrix are folded into the exported ONNX as a
second output, ``domain_distance`` (N), so the runtime needs nothing but the
graph and its threshold (``content_gate`` in the model's metadata).

Fitting needs scikit-learn (training extra); scoring here is numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATE_OUTPUT = "domain_distance"


@dataclass(frozen=True)
class GateFit:
    """A fitted gate: Gaussian of the training features and the distance above which a frame is out of domain."""

    mean: np.ndarray  # (D,)
    precision: np.ndarray  # (D, D), inverse of the shrunk covariance
    threshold: float
    percentile: float
    n_fit: int
    n_calibration: int
    shrinkage: float

    def distances(self, embeddings: np.ndarray) -> np.ndarray:
        """Squared Mahalanobis distance of each row of ``embeddings`` (N, D)."""
        d = np.asarray(embeddings, np.float64) - self.mean
        out: np.ndarray = np.einsum("nd,de,ne->n", d, self.precision, d)
        return out

    def in_domain(self, embeddings: np.ndarray) -> np.ndarray:
        return self.distances(embeddings) <= self.threshold


def fit_gate(
    train_embeddings: np.ndarray, calibration_embeddings: np.ndarray, *, percentile: float = 99.5, margin: float = 1.0
) -> GateFit:
    """Fit the Gaussian on the training embeddings; the threshold is ``margin`` x the ``percentile`` of the
    calibration embeddings' distances.

    The calibration images should not have been seen by the Gaussian; when the
    encoder itself was fine-tuned on them (as here), their distances are lower
    than those of truly new images, which ``margin`` (> 1) makes up for.
    """
    if not margin >= 1.0:
        raise ValueError(f"margin must be >= 1, got {margin}")
    from sklearn.covariance import LedoitWolf

    train = np.asarray(train_embeddings, np.float64)
    calib = np.asarray(calibration_embeddings, np.float64)
    if train.ndim != 2 or calib.ndim != 2 or train.shape[1] != calib.shape[1]:
        raise ValueError(f"embeddings must be (N, D) with the same D; got {train.shape} and {calib.shape}")
    if len(train) < 10 or len(calib) < 10:
        raise ValueError(f"too few images to fit a gate: {len(train)} train, {len(calib)} calibration (need 10 each)")
    lw = LedoitWolf().fit(train)
    partial = GateFit(
        mean=lw.location_,
        precision=lw.precision_,
        threshold=np.inf,
        percentile=percentile,
        n_fit=len(train),
        n_calibration=len(calib),
        shrinkage=float(lw.shrinkage_),
    )
    threshold = margin * float(np.percentile(partial.distances(calib), percentile))
    return GateFit(
        mean=partial.mean,
        precision=partial.precision,
        threshold=threshold,
        percentile=percentile,
        n_fit=len(train),
        n_calibration=len(calib),
        shrinkage=partial.shrinkage,
    )
