"""Control row of Table 1: four gray-level statistics of an image + logistic regression.

How much of a method's accuracy a region's first-order intensity alone explains: every image is
described by the mean, the standard deviation and the 10th and 90th percentiles of its gray
values (at ``input_size`` pixels, area-averaged as every Task 1 model sees it) and read out by the
same linear classifier as PCA and NMF (``classification.readout``: standardised features +
logistic regression). Nothing is trained; the result does not depend on the seed. The paper has
no such row (the report prints "—" for it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np
from pydantic import Field, model_validator

from mtneuro.classification_methods.base import MethodSpec, register_method
from mtneuro.config.classification import DecompositionSettings

if TYPE_CHECKING:  # scikit-learn is imported when the run fits, not when the parameters are checked
    from sklearn.preprocessing import FunctionTransformer


class IntensitySettings(DecompositionSettings):
    """``intensity_baseline``: the image size the statistics are taken at, the percentiles, and
    ``n_components`` = 2 + number of percentiles (mean, std, then the percentiles)."""

    percentiles: Annotated[list[Annotated[float, Field(ge=0, le=100)]], Field(min_length=1)]

    @model_validator(mode="after")
    def _components_are_the_statistics(self) -> IntensitySettings:
        if self.n_components != 2 + len(self.percentiles):
            raise ValueError(
                f"n_components must be 2 + len(percentiles) = {2 + len(self.percentiles)} "
                f"(mean, std and the percentiles), got {self.n_components}"
            )
        return self


def gray_level_statistics(flat: np.ndarray, percentiles: list[float]) -> np.ndarray:
    """Per image (row of ``flat``): mean, standard deviation and the given percentiles of its pixels."""
    flat = np.asarray(flat, dtype=np.float64)
    return np.column_stack([flat.mean(axis=1), flat.std(axis=1), *np.percentile(flat, percentiles, axis=1)])


def fit_intensity_statistics(
    flat: np.ndarray, n_components: int, settings: IntensitySettings, seed: int
) -> tuple[FunctionTransformer, list[dict[str, float]]]:
    """The statistics as a scikit-learn transformer (nothing to fit; ``seed`` unused); the curve
    records the number of statistics."""
    from sklearn.preprocessing import FunctionTransformer

    del seed
    transformer = FunctionTransformer(
        gray_level_statistics, kw_args={"percentiles": list(settings.percentiles)}, validate=False
    ).fit(flat)
    return transformer, [{"components": int(n_components), "loss": 0.0}]


METHOD = register_method(
    MethodSpec(
        name="intensity_baseline",
        label="4 gray-level statistics (mean, std, p10, p90) + logistic regression",
        kind="decomposition",
        order=80,
        inherits=("intensity_baseline",),
        settings=IntensitySettings,
        trainer=fit_intensity_statistics,
    )
)
