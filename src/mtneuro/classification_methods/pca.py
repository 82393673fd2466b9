"""PCA of downsampled images (scikit-learn), read out by the linear classifier."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np

from mtneuro.classification_methods.base import MethodSpec, register_method
from mtneuro.config.classification import DecompositionSettings

if TYPE_CHECKING:
    from sklearn.decomposition import PCA


class PcaSettings(DecompositionSettings):
    """``decomposition`` refined by ``pca``."""

    svd_solver: Literal["auto", "full", "covariance_eigh", "arpack", "randomized"]


def fit_pca(
    flat: np.ndarray, n_components: int, settings: PcaSettings, seed: int
) -> tuple[PCA, list[dict[str, float]]]:
    """PCA of ``flat`` (N, pixels); the curve is the reconstruction error (mean squared, per
    pixel) as components are added (the "loss going down")."""
    from sklearn.decomposition import PCA  # here: the registry is read before a run, scikit-learn takes seconds

    model = PCA(n_components=n_components, svd_solver=settings.svd_solver, random_state=int(seed)).fit(flat)
    centred_var = float(((flat - flat.mean(axis=0)) ** 2).sum(axis=1).mean())
    cum = np.cumsum(model.explained_variance_ratio_)
    curve: list[dict[str, float]] = []
    for k in sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, n_components} & set(range(1, n_components + 1))):
        curve.append({"components": k, "loss": centred_var * (1 - float(cum[k - 1])) / flat.shape[1]})
    return model, curve


METHOD = register_method(
    MethodSpec(
        name="pca",
        label="PCA",
        kind="decomposition",
        order=60,
        inherits=("decomposition", "pca"),
        settings=PcaSettings,
        trainer=fit_pca,
    )
)
