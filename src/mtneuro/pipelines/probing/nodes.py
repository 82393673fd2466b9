"""Task 3 nodes: semantic features of every probing image, frozen-encoder embeddings, linear
read-out (in-sample and grouped cross-validated R^2) and the UMAP figure.

Pure functions; the wiring is in ``pipeline.py`` and the feature definitions (the registry) in
:mod:`mtneuro.features`. Nodes take the typed ``probing`` block (:class:`ProbingParameters`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.metrics import r2_score
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from mtneuro import features as feat
from mtneuro import run_grid, spec
from mtneuro.config.probing import ProbingImages, ProbingParameters, ProbingReadout, ProbingUmap
from mtneuro.cubes import Cube, describe_source
from mtneuro.errors import MtneuroError
from mtneuro.models import FrozenEncoder
from mtneuro.training import thread_limit

log = logging.getLogger(__name__)

#: Columns of ``probing_features`` that identify an image (the feature columns follow).
IMAGE_COLUMNS: tuple[str, ...] = ("source", "cube_id", "region", "label", "z", "z_abs", "y0", "x0", "height", "width")
#: Columns of ``task3_probing``.
RESULT_COLUMNS: tuple[str, ...] = (
    "source",
    "method",
    "train_config",
    "seed",
    "feature",
    "r2_in_sample",
    "r2_in_sample_noise",
    "r2_cv",
    "n_images",
    "embedding_dim",
    "cv_folds",
    "cv_ridge_alpha",
    "image_unit",
)


class ProbingError(MtneuroError, ValueError):
    """Inputs or parameters the probing pipeline cannot work with."""


# --- images and features ------------------------------------------------------------------------


def image_unit_name(images: ProbingImages) -> str:
    """``slice`` (one image per slice) or ``tile<size>``: the short name of the log lines."""
    tile = images.tile_size
    return "slice" if tile is None else f"tile{int(tile)}"


def describe_image_unit(probing_features: pd.DataFrame) -> str:
    """The image unit of a features table in words, for the ``image_unit`` column of Task 3:
    ``whole 128x128 slices`` or ``128x128 tiles of 256x256 slices (4 per slice)``.

    Read from the table itself (image and slice sizes, images per slice), so it states what was
    probed, whatever the parameters said.
    """
    if probing_features.empty:
        return "no images"
    table = probing_features
    slices = table.groupby(["cube_id", "z"], sort=False)
    slice_h = int((table["y0"] + table["height"]).max())
    slice_w = int((table["x0"] + table["width"]).max())
    per_slice = sorted(set(slices.size().tolist()))
    sizes = sorted(set(zip(table["height"].astype(int), table["width"].astype(int))))
    if per_slice == [1] and sizes == [(slice_h, slice_w)]:
        return f"whole {slice_h}x{slice_w} slices"
    tile = ", ".join(f"{h}x{w}" for h, w in sizes)
    count = "/".join(str(n) for n in per_slice)
    return f"{tile} tiles of {slice_h}x{slice_w} slices ({count} per slice)"


def build_probing_dataset(
    cubes: dict[str, Cube], split_index: pd.DataFrame, probing: ProbingParameters
) -> tuple[pd.DataFrame, np.ndarray]:
    """The probing images and their semantic features, row for row.

    Images are the ``probing`` slices of the split index (every slice of the four main cubes),
    keeping one slice in ``images.slice_step``; each slice is one image, or is cut into
    ``images.tile_size`` tiles. Returns the features table (one row per image: where it comes
    from and the features of :mod:`mtneuro.features`) and the uint8 images ``(N, H, W)`` in the
    same order, so that embeddings and features always describe the same pixels. Every
    registered feature is computed (``probing.features`` selects those read out).
    """
    params = probing.images
    step = params.slice_step
    tile = params.tile_size
    connectivity = probing.cell_connectivity
    names = feat.feature_names()
    index = split_index[split_index["config"] == "probing"]
    if index.empty:
        raise ProbingError("The split index has no 'probing' rows (docs/CONTRACTS.md: main cubes, every slice).")
    source = describe_source(cubes)
    order = {f"main_{r}": i for i, r in enumerate(spec.REGIONS)}
    index = index[index["z"] % step == 0].sort_values(
        ["cube_id", "z"], key=lambda s: s.map(order).fillna(len(order)) if s.name == "cube_id" else s
    )
    rows, images = [], []
    for cube_id, group in index.groupby("cube_id", sort=False):
        cube = cubes.get(cube_id)
        if cube is None or cube.pixel_labels is None:
            raise ProbingError(f"Probing needs the pixel labels of cube {cube_id!r}, which the cubes lack.")
        cube_rows, cube_images = _cube_images(
            cube.image, cube.pixel_labels, str(cube_id), group, source, tile, connectivity, names
        )
        rows += cube_rows
        images += cube_images
    table = _typed_features(pd.DataFrame(rows, columns=[*IMAGE_COLUMNS, *names]), names)
    stacked = np.stack(images) if images else np.zeros((0, 0, 0), dtype=np.uint8)
    undefined = {f: int(table[f].isna().sum()) for f in names if table[f].isna().any()}
    log.info(
        "Probing: %d images (%s, slice_step %d) from %d cubes; images without a defined value: %s",
        len(table),
        image_unit_name(params),
        step,
        table["cube_id"].nunique(),
        undefined or "none",
    )
    log.info("Probing feature means per region:\n%s", table.groupby("region")[list(names)].mean().round(3).to_string())
    return table, stacked


def _cube_images(
    volume: np.ndarray,
    pixel_labels: np.ndarray,
    cube_id: str,
    group: pd.DataFrame,
    source: str,
    tile: int | None,
    connectivity: int,
    names: Sequence[str],
) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
    """The probing images of one cube (its ``group`` of split-index rows) and a feature row each."""
    rows, images = [], []
    # every image of the cube measured at once; the authors' cells span the whole cube
    stack = feat.LabelStack(pixel_labels, tile, connectivity)
    for row in group.itertuples(index=False):
        image = volume[int(row.z)]
        for k, (y0, x0, h, w) in enumerate(stack.units):
            rows.append(
                {
                    "source": source,
                    "cube_id": cube_id,
                    "region": str(row.region),
                    "label": int(row.label),
                    "z": int(row.z),
                    "z_abs": int(row.z_abs),
                    "y0": y0,
                    "x0": x0,
                    "height": h,
                    "width": w,
                    **feat.feature_values(stack.image(int(row.z), k), names),
                }
            )
            images.append(np.asarray(image[y0 : y0 + h, x0 : x0 + w], dtype=np.uint8))
    return rows, images


def _typed_features(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """``probing_features`` with its column types (strings, int64 positions, each feature's dtype)."""
    return table.astype(
        {
            "source": "string",
            "cube_id": "string",
            "region": "string",
            "label": "int64",
            "z": "int64",
            "z_abs": "int64",
            "y0": "int64",
            "x0": "int64",
            "height": "int64",
            "width": "int64",
            **{name: feat.get_feature(name).dtype for name in names},
        }
    )


# --- embeddings -------------------------------------------------------------------------------


def embed_images(probing_images: np.ndarray, frozen_encoder: FrozenEncoder, probing: ProbingParameters) -> np.ndarray:
    """Embeddings ``(N, D)`` float32 of the probing images by one frozen encoder, in batches."""
    if not isinstance(frozen_encoder, FrozenEncoder):
        raise ProbingError(f"Expected a mtneuro.models.FrozenEncoder, got {type(frozen_encoder).__name__}.")
    batch = probing.embed_batch_size
    with thread_limit(probing.threads):
        parts = [
            np.asarray(frozen_encoder.embed(probing_images[i : i + batch]))
            for i in range(0, len(probing_images), batch)
        ]
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    embeddings = np.concatenate(parts).astype(np.float32, copy=False)
    if embeddings.ndim != 2 or len(embeddings) != len(probing_images):
        raise ProbingError(
            f"Encoder returned shape {embeddings.shape} for {len(probing_images)} images; expected (N, D)."
        )
    if not np.isfinite(embeddings).all():
        raise ProbingError(f"Encoder {frozen_encoder.metadata!r} returned non-finite embeddings.")
    return embeddings


def embed_with_indexed_encoder(
    probing_images: np.ndarray,
    frozen_encoders: Mapping[str, Mapping[str, Any]],
    probing: ProbingParameters,
    *,
    run: str,
) -> np.ndarray:
    """:func:`embed_images` with the encoder of classification run ``run`` (e.g.
    ``byol.roi_c1.seed0``) from Task 1's run index, which loads only that encoder."""
    if run not in frozen_encoders:
        raise ProbingError(
            f"The Task 1 run index has no encoder {run!r}: run the classification pipeline with that "
            f"method, training set and seed first (it holds {sorted(frozen_encoders)})."
        )
    return embed_images(probing_images, frozen_encoders[run]["frozen_encoder"], probing)


# --- read-out ---------------------------------------------------------------------------------


def slice_blocks(table: pd.DataFrame, block_slices: int) -> np.ndarray:
    """Group id of every image: its cube and contiguous block of ``block_slices`` slices."""
    if int(block_slices) < 1:
        raise ProbingError(f"Parameter 'probing.readout.block_slices' must be >= 1, got {block_slices}.")
    block = (table["z"].to_numpy() // int(block_slices)).astype(str)
    return pd.factorize(table["cube_id"].astype(str).to_numpy() + ":" + block)[0]


def blocked_folds(
    table: pd.DataFrame, n_splits: int, block_slices: int, gap_slices: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Grouped k-fold over contiguous slice blocks, with a purge gap.

    Every block of ``block_slices`` consecutive slices of a cube (all tiles of those slices) lies
    wholly in one test fold (scikit-learn ``GroupKFold``). Then every training image of the same
    cube lying within ``gap_slices`` slices of a test image is dropped from that fold's training
    set, so neighbouring slices (which share cells and vessels) are never on both sides
    (``gap_slices`` >= 1). Returns ``(train_indices, test_indices)`` per fold; empty when there
    are fewer than two blocks.
    """
    if int(gap_slices) < 1:
        raise ProbingError(
            f"Parameter 'probing.readout.gap_slices' must be >= 1 (neighbouring slices), got {gap_slices}."
        )
    groups = slice_blocks(table, block_slices)
    n_groups = len(np.unique(groups))
    k = min(int(n_splits), n_groups)
    if k < 2:
        return []
    cube = table["cube_id"].astype(str).to_numpy()
    z = table["z"].to_numpy()
    folds = []
    for train, test in GroupKFold(n_splits=k).split(np.zeros(len(table)), groups=groups):
        keep = np.ones(len(train), dtype=bool)
        for c in np.unique(cube[test]):
            test_z = np.unique(z[test][cube[test] == c])
            in_cube = cube[train] == c
            tz = z[train][in_cube]
            pos = np.clip(np.searchsorted(test_z, tz), 1, len(test_z)) - 1
            nearest = np.minimum(np.abs(tz - test_z[pos]), np.abs(tz - test_z[np.minimum(pos + 1, len(test_z) - 1)]))
            keep[np.flatnonzero(in_cube)[nearest <= int(gap_slices)]] = False
        folds.append((train[keep], test))
    return folds


@dataclass(frozen=True)
class NestedFold:
    """One outer fold of the cross-validated read-out (indices into the features table) and the
    inner folds, drawn from its training images only, on which the ridge penalty is chosen."""

    train: np.ndarray
    test: np.ndarray
    inner: tuple[tuple[np.ndarray, np.ndarray], ...]


def nested_folds(table: pd.DataFrame, readout: ProbingReadout) -> list[NestedFold]:
    """Outer :func:`blocked_folds` (``readout.cv_folds``) and, inside each outer training set,
    inner :func:`blocked_folds` (``readout.inner_folds``, the same blocks and purge gap).

    The inner folds see only the outer training images, so the penalty choice never looks at
    the images it is scored on.
    """
    folds = []
    for train, test in blocked_folds(table, readout.cv_folds, readout.block_slices, readout.gap_slices):
        inner = blocked_folds(table.iloc[train], readout.inner_folds, readout.block_slices, readout.gap_slices)
        folds.append(NestedFold(train, test, tuple((train[a], train[b]) for a, b in inner)))
    return folds


def constant_columns(y: np.ndarray) -> np.ndarray:
    """Columns of ``y (N, T)`` without variance (up to rounding): their R^2 is undefined.

    Relative to the column's scale, because the mean of a constant column of non-representable
    values (0.1, ...) leaves a rounding residue that would otherwise give a meaningless R^2.
    """
    total = np.sum((y - y.mean(axis=0)) ** 2, axis=0)
    return total <= 1e-12 * np.maximum(1.0, np.sum(y**2, axis=0))


def _r2(y: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """scikit-learn's R^2 (``1 - SS_res / SS_tot``, SS_tot around the mean of ``y``) per column;
    NaN for a constant column, where R^2 is undefined (scikit-learn would report 1 or 0).

    Scored on all columns at once: scoring only a column subset would change NumPy's summation
    order (a strided copy) and with it the last bits of the numbers."""
    r2 = r2_score(y, prediction, multioutput="raw_values")
    return np.where(constant_columns(y), np.nan, r2)


def _model() -> Any:
    """The paper's read-out: ordinary least squares on standardised embeddings (in-sample R^2)."""
    return make_pipeline(StandardScaler(), LinearRegression())


def _scaling(clip_held_out: bool) -> list[Any]:
    """Standardisation inside the fold; ``clip_held_out`` first clips held-out embedding values to
    the training range of their dimension (scikit-learn ``MinMaxScaler(clip=True)``; on the
    training images an affine map that the standardisation undoes).

    Without the clip, a dimension almost constant on the training images (an NMF component with
    standard deviation 1e-9) but not on the held-out ones is standardised to values of 1e5 there,
    and any weight on it extrapolates far beyond the feature's range, whatever the penalty.
    """
    return [MinMaxScaler(clip=True), StandardScaler()] if clip_held_out else [StandardScaler()]


def _ridge(alpha: float | np.ndarray, clip_held_out: bool) -> Any:
    """The cross-validated read-out: ridge regression on embeddings standardised inside the fold
    (:func:`_scaling`; ``alpha`` one penalty, or one per target column)."""
    return make_pipeline(*_scaling(clip_held_out), Ridge(alpha=alpha))


def choose_alphas(
    X: np.ndarray, Y: np.ndarray, inner: Sequence[tuple[np.ndarray, np.ndarray]], readout: ProbingReadout
) -> np.ndarray:
    """Per target column of ``Y``, the penalty of ``readout.ridge_alphas`` with the smallest
    squared error of the inner folds' pooled out-of-fold predictions (ties: the weakest).

    Each candidate is :func:`_ridge` fitted on the inner training images (the scaling, which does
    not depend on the penalty, fitted once per inner fold)."""
    grid = np.asarray(readout.ridge_alphas, dtype=np.float64)
    error = np.zeros((len(grid), Y.shape[1]))
    for train, test in inner:
        scaling = make_pipeline(*_scaling(readout.clip_held_out)).fit(X[train])
        X_train, X_test = scaling.transform(X[train]), scaling.transform(X[test])
        for i, alpha in enumerate(grid):
            prediction = Ridge(alpha=alpha).fit(X_train, Y[train]).predict(X_test).reshape(len(test), -1)
            error[i] += np.sum((Y[test] - prediction) ** 2, axis=0)
    return grid[np.argmin(error, axis=0)]


def linear_r2(
    embeddings: np.ndarray, y: np.ndarray, folds: Sequence[NestedFold], readout: ProbingReadout
) -> tuple[Any, Any, int, int, Any]:
    """In-sample and cross-validated R^2 of linear read-outs from embeddings to features.

    ``y`` is one feature ``(N,)`` or several ``(N, T)`` fitted together (each column gets the
    fit, and the penalty, it would get alone). Images with a NaN value are left out of fitting
    and scoring.

    In-sample R^2 (the paper's): least squares (:func:`_model`) fitted and scored on all images.
    Cross-validated R^2: for every outer fold, a ridge penalty per feature is chosen from
    ``readout.ridge_alphas`` on the fold's inner folds (:func:`choose_alphas`, outer training
    images only); the ridge read-out (:func:`_ridge`) is refitted on the outer training images
    with it and predicts the outer test images; the out-of-fold predictions of all folds are
    pooled and scored, ``1 - SS_res / SS_tot`` around the mean of the scored images. An outer
    fold without two usable inner folds is skipped. NaN when fewer than ``readout.min_images``
    images have values, or for a constant feature. Returns ``(r2_in_sample, r2_cv, n_images,
    folds_used, median_alpha)`` (the median over the used outer folds of the chosen penalty),
    floats for a 1-D ``y``, else arrays.
    """
    Y = np.asarray(y, dtype=np.float64)
    single = Y.ndim == 1
    Y = Y.reshape(len(Y), -1)
    valid = np.isfinite(Y).all(axis=1)
    n = int(valid.sum())
    nan = np.full(Y.shape[1], np.nan)
    in_sample, cv, used, alpha = nan, nan, 0, nan
    chosen: list[np.ndarray] = []
    if n >= max(2, int(readout.min_images)):
        X, target = embeddings[valid], Y[valid]
        in_sample = _r2(target, _model().fit(X, target).predict(X).reshape(target.shape))
        X64 = X.astype(np.float64)
        position = np.full(len(Y), -1)
        position[valid] = np.arange(n)

        def usable(indices: np.ndarray) -> np.ndarray:
            at = position[indices]
            return at[at >= 0]

        prediction = np.full(target.shape, np.nan)
        for fold in folds:
            tr, te = usable(fold.train), usable(fold.test)
            inner = [(a, b) for a, b in ((usable(i), usable(j)) for i, j in fold.inner) if len(a) >= 2 and len(b)]
            if len(tr) < 2 or len(te) == 0 or len(inner) < 2:
                continue
            penalty = choose_alphas(X64, target, inner, readout)
            ridge = _ridge(penalty, readout.clip_held_out).fit(X64[tr], target[tr])
            prediction[te] = ridge.predict(X64[te]).reshape(len(te), -1)
            chosen.append(penalty)
            used += 1
        scored = np.isfinite(prediction).all(axis=1)
        if scored.sum() >= 2:
            cv = _r2(target[scored], prediction[scored])
        if chosen:
            alpha = np.median(np.stack(chosen), axis=0)
    if single:
        return float(in_sample[0]), float(cv[0]), n, used, float(alpha[0])
    return in_sample, cv, n, used, alpha


def noise_floor_r2(y: np.ndarray, dim: int, seed: int) -> np.ndarray:
    """In-sample R^2 of the paper's read-out (:func:`_model`) from a random Gaussian embedding of
    ``dim`` dimensions for the images of ``y (N, T)`` (images with a NaN value left out, as in
    :func:`linear_r2`): what an in-sample R^2 reaches with no information, about
    ``dim / (n - 1)``. NaN where :func:`linear_r2` gives none."""
    Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    noise = np.random.default_rng(int(seed)).standard_normal((len(Y), int(dim)))
    valid = np.isfinite(Y).all(axis=1)
    if valid.sum() < 2:
        return np.full(Y.shape[1], np.nan)
    X, target = noise[valid], Y[valid]
    return _r2(target, _model().fit(X, target).predict(X).reshape(target.shape))


def probe_embeddings(
    probing_features: pd.DataFrame, embeddings: np.ndarray, probing: ProbingParameters
) -> pd.DataFrame:
    """One row per feature: in-sample and grouped cross-validated R^2 of the linear read-out, and
    the in-sample R^2 of a Gaussian noise embedding of the same size (:func:`noise_floor_r2`).

    Features defined on the same images (e.g. the pixel fractions and the cell count, defined
    everywhere) are fitted together, which gives the same numbers as one fit each, faster.
    """
    if len(embeddings) != len(probing_features):
        raise ProbingError(f"{len(embeddings)} embeddings for {len(probing_features)} feature rows.")
    readout = probing.readout
    folds = nested_folds(probing_features, readout)
    names = list(probing.features)
    values = {name: probing_features[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in names}
    groups: dict[bytes, list[str]] = {}
    for name in names:
        groups.setdefault(np.isfinite(values[name]).tobytes(), []).append(name)
    results = {}
    for group in groups.values():
        with thread_limit(probing.threads):
            r2_in, r2_cv, n, used, alpha = linear_r2(
                embeddings,
                np.column_stack([values[g] for g in group]),
                folds,
                readout,
            )
            floor = noise_floor_r2(
                np.column_stack([values[g] for g in group]), embeddings.shape[1], readout.noise_floor_seed
            )
        for i, name in enumerate(group):
            results[name] = {
                "feature": name,
                "r2_in_sample": float(r2_in[i]),
                "r2_in_sample_noise": float(floor[i]) if np.isfinite(r2_in[i]) else float("nan"),
                "r2_cv": float(r2_cv[i]),
                "n_images": n,
                "embedding_dim": int(embeddings.shape[1]),
                "cv_folds": used,
                "cv_ridge_alpha": float(alpha[i]),
            }
    return pd.DataFrame([results[name] for name in names])


def collect_probing_results(
    probing_features: pd.DataFrame, *results: pd.DataFrame, runs: Sequence[run_grid.RunSpec]
) -> pd.DataFrame:
    """The Task 3 table: one row per (method, training configuration, seed, feature), with the
    image unit probed in words (:func:`describe_image_unit`)."""
    source = str(probing_features["source"].iloc[0]) if len(probing_features) else "unknown"
    table = run_grid.collect_rows(list(runs), list(results), source)
    if table.empty:
        log.warning("Probing: no frozen encoder to read out (empty classification grid)")
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    table = table.rename(columns={"config": "train_config"})
    table["train_config"] = table["train_config"].map(lambda c: spec.CONFIG_LABELS.get(str(c), str(c)))
    table["image_unit"] = describe_image_unit(probing_features)
    summary = table.groupby(["train_config", "method", "feature"], sort=False)[["r2_in_sample", "r2_cv"]].mean()
    cells = summary["r2_in_sample"].map("{:.2f}".format) + " / " + summary["r2_cv"].map("{:.2f}".format)
    log.info(
        "Task 3 R^2 on %s, in-sample / cross-validated (mean over seeds):\n%s",
        table["image_unit"].iloc[0],
        cells.unstack("feature").to_string(),
    )
    return table[list(RESULT_COLUMNS)]


def make_collector(runs: Sequence[run_grid.RunSpec]) -> Callable[..., pd.DataFrame]:
    """:func:`collect_probing_results` bound to the grid (a typed function, unlike a partial)."""

    def collect_probing_grid(probing_features: pd.DataFrame, *results: pd.DataFrame) -> pd.DataFrame:
        return collect_probing_results(probing_features, *results, runs=runs)

    return collect_probing_grid


# --- UMAP figure ------------------------------------------------------------------------------


#: Where UMAP's compiled numba functions are kept between processes when ``NUMBA_CACHE_DIR`` is
#: not set (the user's cache, so a fresh clone or data root reuses them).
UMAP_CACHE_SUBDIR = ("mtneuro", "numba")


def numba_cache_dir() -> Path:
    """``NUMBA_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME`` (``~/.cache``) ``/mtneuro/numba``."""
    given = os.environ.get("NUMBA_CACHE_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, *UMAP_CACHE_SUBDIR)


def cache_umap_compilation() -> int:
    """Let umap-learn's and pynndescent's numba functions cache their machine code on disk.

    umap-learn jits without ``cache=True``, so every process compiled UMAP again (~9 s CPU of a
    ~10 s figure); with a disk cache the 2nd process loads it (same code, same projection).
    Returns the number of functions switched (0 when the cache folder cannot be made)."""
    import numba

    folder = numba_cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return 0
    config: Any = numba.config  # its settings are set at import, unknown to the type checker
    if not config.CACHE_DIR:
        config.CACHE_DIR = str(folder)  # read by the cache locator when caching is enabled
    count = 0
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith(("umap", "pynndescent")):
            continue
        for value in list(vars(module).values()):
            cache = getattr(value, "_cache", None)
            if isinstance(value, numba.core.registry.CPUDispatcher) and isinstance(cache, numba.core.caching.NullCache):
                try:
                    value.enable_caching()
                except (OSError, RuntimeError):  # a cache folder numba cannot use: compile as before
                    return count
                count += 1
    return count


def umap_projection(embeddings: np.ndarray, umap_params: ProbingUmap) -> np.ndarray:
    """2-D UMAP of the embeddings (standardised), seeded by ``random_state``."""
    import umap  # slow import (numba): only where it is used

    cache_umap_compilation()
    if len(embeddings) < 3:
        return np.zeros((len(embeddings), 2))
    X = StandardScaler().fit_transform(embeddings)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=int(min(umap_params.n_neighbors, len(X) - 1)),
        min_dist=float(umap_params.min_dist),
        n_epochs=umap_params.n_epochs,
        metric=umap_params.metric,
        random_state=umap_params.random_state,
        n_jobs=1,  # a seeded UMAP runs on one thread anyway
    )
    return reducer.fit_transform(X)


def plot_umap(
    probing_features: pd.DataFrame, embeddings: np.ndarray, probing: ProbingParameters, encoder_label: str
) -> Figure:
    """The paper's Figure 4: one encoder's embeddings in 2-D, coloured by region and by each feature."""
    params = probing.umap
    with thread_limit(probing.threads):
        xy = umap_projection(embeddings, params)
    names = list(probing.features)
    panels = ["region", *names]
    ncols = 3
    nrows = -(-len(panels) // ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.8 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    size = float(params.point_size)
    regions = probing_features["region"].astype(str).to_numpy()
    colours = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a"]
    for ax, panel in zip(axes, panels):
        if panel == "region":
            for i, region in enumerate(spec.REGIONS):
                m = regions == region
                ax.scatter(xy[m, 0], xy[m, 1], s=size, c=colours[i % len(colours)], label=region, linewidths=0)
            ax.legend(markerscale=2, fontsize=8, frameon=False)
        else:
            values = probing_features[panel].to_numpy(dtype=np.float64, na_value=np.nan)
            missing = ~np.isfinite(values)
            if missing.any():
                ax.scatter(xy[missing, 0], xy[missing, 1], s=size, c="lightgrey", linewidths=0, label="undefined")
                ax.legend(markerscale=2, fontsize=8, frameon=False)
            points = ax.scatter(
                xy[~missing, 0], xy[~missing, 1], s=size, c=values[~missing], cmap="viridis", linewidths=0
            )
            fig.colorbar(points, ax=ax, shrink=0.8)
        ax.set_title(panel.replace("_", " "), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(panels) :]:
        ax.set_axis_off()
    source = str(probing_features["source"].iloc[0]) if len(probing_features) else "unknown"
    fig.suptitle(f"UMAP of {encoder_label} embeddings ({len(xy)} images, source: {source})", fontsize=11)
    return fig


def make_umap_plotter(encoder_label: str) -> Callable[..., Figure]:
    """:func:`plot_umap` bound to the label of the encoder shown."""

    def plot_probing_umap(probing_features: pd.DataFrame, embeddings: np.ndarray, probing: ProbingParameters) -> Figure:
        return plot_umap(probing_features, embeddings, probing, encoder_label)

    return plot_probing_umap
