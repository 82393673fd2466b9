"""NMF of downsampled images (scikit-learn, coordinate descent), read out by the linear classifier."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import NonNegativeFloat, PositiveInt

from mtneuro.classification_methods.base import MethodSpec, register_method
from mtneuro.config.classification import DecompositionSettings

if TYPE_CHECKING:
    from sklearn.decomposition import NMF


class NmfSettings(DecompositionSettings):
    """``decomposition`` refined by ``nmf``."""

    init: Literal["random", "nndsvd", "nndsvda", "nndsvdar"]
    max_iter: PositiveInt
    tol: NonNegativeFloat
    #: The reconstruction error is recorded after each of these blocks of iterations.
    history_chunks: PositiveInt


def fit_nmf(
    flat: np.ndarray, n_components: int, settings: NmfSettings, seed: int
) -> tuple[NMF, list[dict[str, float]]]:
    """NMF of ``flat`` (N, pixels), ``max_iter`` iterations in ``history_chunks`` blocks; the curve
    is the reconstruction error (mean squared, per pixel) after each block."""
    from sklearn.decomposition import NMF  # here: the registry is read before a run, scikit-learn takes seconds
    from sklearn.exceptions import ConvergenceWarning

    chunks = max(1, int(settings.history_chunks))
    max_iter = int(settings.max_iter)
    per_chunk = max(1, max_iter // chunks)
    curve: list[dict[str, float]] = []
    model = NMF(
        n_components=n_components,
        init=settings.init,
        max_iter=per_chunk,
        tol=float(settings.tol),
        random_state=int(seed),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        w = model.fit_transform(flat)
        h = model.components_
        curve.append({"iterations": int(model.n_iter_), "loss": float(model.reconstruction_err_**2 / flat.size)})
        for _ in range(chunks - 1):
            model = NMF(
                n_components=n_components,
                init="custom",
                max_iter=per_chunk,
                tol=float(settings.tol),
                random_state=int(seed),
            )
            w = model.fit_transform(flat, W=w, H=h)
            h = model.components_
            curve.append(
                {
                    "iterations": int(curve[-1]["iterations"] + model.n_iter_),
                    "loss": float(model.reconstruction_err_**2 / flat.size),
                }
            )
    return model, curve


METHOD = register_method(
    MethodSpec(
        name="nmf",
        label="NMF",
        kind="decomposition",
        order=70,
        inherits=("decomposition", "nmf"),
        settings=NmfSettings,
        trainer=fit_nmf,
    )
)
