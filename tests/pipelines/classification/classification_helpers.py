"""Task 1 test helpers: synthetic cubes whose regions differ in texture, their split index, small
typed parameters and CPU hardware settings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage

from mtneuro import spec
from mtneuro.config import TrainingParameters
from mtneuro.config.classification import ClassificationParameters
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.volumes import Window

#: The shared ``training`` block of the tests: CPU, one thread, no progress bar.
HARDWARE = TrainingParameters(
    accelerator="cpu",
    allow_cpu=True,
    precision="auto",
    progress_bar=False,
    deterministic=True,
    torch_threads=1,
    dataloader={"num_workers": 0, "pin_memory": "auto"},
    dry_run_steps=None,
)


def _texture(region: str, shape: tuple[int, int, int], rng: np.random.Generator, shift: float = 0.0) -> np.ndarray:
    """uint8 sections whose texture depends on the region (not on mean intensity)."""
    noise = rng.standard_normal(shape)
    if region == "CTX":  # fine grain
        img = ndimage.gaussian_filter(noise, (0, 0.6, 0.6))
    elif region == "STR":  # coarse blobs
        img = ndimage.gaussian_filter(noise, (0, 2.5, 2.5))
    elif region == "VP":  # streaks along both axes (unchanged by flips and 90-degree rotations)
        img = ndimage.gaussian_filter(noise, (0, 0.5, 4.0)) + ndimage.gaussian_filter(
            rng.standard_normal(shape), (0, 4.0, 0.5)
        )
    else:  # ZI: sparse bright spots on a smooth background
        img = ndimage.gaussian_filter(noise, (0, 1.5, 1.5)) + 4 * (rng.random(shape) > 0.97)
    img = (img - img.mean(axis=(1, 2), keepdims=True)) / (img.std(axis=(1, 2), keepdims=True) + 1e-6)
    return np.clip(128 + 40 * img + shift, 0, 255).astype(np.uint8)


def make_cubes(size: int = 16, depth: int = 360, seed: int = 0) -> dict[str, Cube]:
    rng = np.random.default_rng(seed)
    cubes = {}
    for region in spec.REGIONS:
        extras = [(f"extra_{region}_{k}", "extra", 10.0 * (k + 1)) for k in range(3)]
        for cube_id, role, shift in [(f"main_{region}", "main", 0.0), *extras]:
            window = Window(110, 110 + depth, 0, size, 0, size)
            uris = {"image": "phantom://prasad2020/image", "roi_labels": "phantom://prasad2020/roi_labels"}
            cspec = CubeSpec(cube_id, region, role, window, uris)
            image = _texture(region, (depth, size, size), rng, shift)
            roi = np.full((depth, size, size), spec.BRAIN_AREA_VALUES[region], dtype=np.uint64)
            pix = np.zeros((depth, size, size), dtype=np.uint8) if role == "main" else None
            cubes[cube_id] = Cube(cspec, image, roi, pix)
    return cubes


def make_split_index(cubes: dict[str, Cube]) -> pd.DataFrame:
    """The split index of docs/CONTRACTS.md for roi_c1/c2/c3 (extra cube 0 trains ROI-C3)."""
    rows = []
    for cube in cubes.values():
        z = np.arange(cube.image.shape[0])
        z_abs = z + cube.z_offset
        label = spec.REGION_INDEX[cube.region]
        if cube.spec.role == "main":
            split = np.where(
                (z_abs >= 110) & (z_abs < 380),
                "train",
                np.where((z_abs >= 380) & (z_abs < 410), "val", np.where((z_abs >= 420) & (z_abs < 470), "test", "")),
            )
            for config in ("roi_c1", "roi_c2", "roi_c3"):
                s = split if config == "roi_c1" else np.where(np.isin(split, ["train", "val"]), split, "")
                rows.append(
                    pd.DataFrame(
                        {
                            "config": config,
                            "cube_id": cube.cube_id,
                            "region": cube.region,
                            "label": label,
                            "z": z,
                            "z_abs": z_abs,
                            "split": s,
                        }
                    )
                )
        elif cube.cube_id.endswith("_0"):
            rows.append(
                pd.DataFrame(
                    {
                        "config": "roi_c3",
                        "cube_id": cube.cube_id,
                        "region": cube.region,
                        "label": label,
                        "z": z,
                        "z_abs": z_abs,
                        "split": "train",
                    }
                )
            )
        else:
            for config in ("roi_c2", "roi_c3"):
                rows.append(
                    pd.DataFrame(
                        {
                            "config": config,
                            "cube_id": cube.cube_id,
                            "region": cube.region,
                            "label": label,
                            "z": z,
                            "z_abs": z_abs,
                            "split": "test",
                        }
                    )
                )
    index = pd.concat(rows, ignore_index=True)
    return index[index["split"] != ""].reset_index(drop=True)


def tiny_raw() -> dict[str, Any]:
    """A complete, small ``classification`` block (raw YAML shape) sized for the synthetic cubes."""
    return {
        "methods": ["supervised", "mixup", "byol", "myow", "myow_merged", "pca", "nmf"],
        "configs": ["roi_c1", "roi_c3"],
        "seeds": [0],
        "evaluate_on": {"roi_c1": ["roi_c1", "roi_c2"], "roi_c3": ["roi_c3"]},
        "data": {
            "train_splits": ["train", "val"],
            "train_slice_step": 6,
            "test_splits": ["test"],
            "test_slice_step": {"roi_c1": 6, "roi_c2": 6, "roi_c3": 6},
            "prepared_size": 16,
        },
        "encoder": {
            "name": "resnet18",
            "in_channels": 1,
            "representation_dim": 32,
            "width": 8,
            "stem": "small",
            "input_size": 16,
            "normalisation": "training_set",
        },
        "network_training": {
            "epochs": 4,
            "batch_size": 32,
            "optimizer": "sgd",
            "lr": 0.05,
            "momentum": 0.9,
            "weight_decay": 0.0005,
            "lr_schedule": "constant",
            "warmup_epochs": 0,
            "augment": True,
        },
        "augmentation": {
            "crop_scale": [0.6, 1.0],
            "flip": True,
            "rot90": True,
            "brightness": 0.2,
            "contrast": 0.2,
            "blur_prob": 0.3,
            "blur_sigma": [0.1, 0.8],
            "noise_std": 0.02,
        },
        "supervised": {"dropout": 0.2},
        "mixup": {"alpha": 0.4},
        "byol": {"projector_hidden": 32, "projector_out": 16, "predictor_hidden": 32, "momentum_base": 0.99},
        "myow": {"mined_weight": 0.1, "ramp_epochs": 1, "k": 1},
        "myow_merged": {},
        "decomposition": {"input_size": 16, "n_components": 16},
        "pca": {"svd_solver": "full"},
        "nmf": {"init": "nndsvda", "max_iter": 60, "tol": 0.0, "history_chunks": 3},
        "intensity_baseline": {"input_size": 16, "n_components": 4, "percentiles": [10, 90]},
        "random_encoder": {},
        "readout": {"C": 1.0, "max_iter": 500},
        "bootstrap": {"resamples": 200, "level": 0.95, "seed": 0},
        "hardware": {},
        "method_overrides": {},
    }


def tiny_params(**changes: Any) -> ClassificationParameters:
    """:func:`tiny_raw` with ``block__key=value`` changes, parsed."""
    raw = tiny_raw()
    for key, value in changes.items():
        *parents, leaf = key.split("__")
        target = raw
        for parent in parents:
            target = target[parent]
        target[leaf] = value
    return ClassificationParameters.model_validate(raw)
