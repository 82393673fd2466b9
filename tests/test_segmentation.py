"""Task 2 nodes on synthetic cubes: label settings, data, augmentation, one run, table, figure, wiring."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog
from matplotlib.figure import Figure

from mtneuro import spec
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.pipelines.segmentation import create_pipeline, nodes
from mtneuro.pipelines.segmentation.engine import Block, PatchDataset, augment, contiguous_runs, patch_origins
from mtneuro.settings import CONFIG_LOADER_ARGS
from mtneuro.volumes import Window

CONF = Path(__file__).resolve().parents[1] / "conf"
DEPTH, SIZE = 40, 32
SPLITS = {"train": range(0, 20), "val": range(20, 26), "test": range(28, 40)}


def _synthetic_cube(region: str, seed: int) -> Cube:
    """Dark disks (vessels, large; cells, small) and bright stripes (axons) on gray tissue."""
    rng = np.random.default_rng(seed)
    z, y, x = np.mgrid[0:DEPTH, 0:SIZE, 0:SIZE]
    labels = np.zeros((DEPTH, SIZE, SIZE), dtype=np.uint64)
    if region in ("STR", "VP"):
        labels[(y + z // 4) % 9 < 2] = spec.AXON
    for _ in range(3):
        cy, cx = rng.integers(4, SIZE - 4, 2)
        labels[(y - cy) ** 2 + (x - cx) ** 2 < 10] = spec.VESSEL
    for _ in range(6):
        cz, cy, cx = rng.integers(0, DEPTH), *rng.integers(2, SIZE - 2, 2)
        labels[(z - cz) ** 2 / 9 + (y - cy) ** 2 + (x - cx) ** 2 < 5] = spec.CELL
    gray = np.array([130, 40, 70, 180], dtype=float)[labels.astype(int)] + rng.normal(0, 8, labels.shape)
    window = Window(110, 110 + DEPTH, 0, SIZE, 0, SIZE)
    uris = {c: f"phantom://prasad2020/{c}" for c in ("image", "roi_labels", "pixel_labels")}
    cube_spec = CubeSpec(f"main_{region}", region, "main", window, uris)
    roi = np.full(labels.shape, spec.BRAIN_AREA_VALUES[region], dtype=np.uint64)
    return Cube(cube_spec, np.clip(gray, 0, 255).astype(np.uint8), roi, labels)


def _split_index(cubes: dict[str, Cube]) -> pd.DataFrame:
    rows = []
    for cube in cubes.values():
        for config in ("seg_3class", "seg_4class"):
            if config == "seg_4class" and cube.region == "ZI":
                continue
            for split, zs in SPLITS.items():
                rows += [
                    {"config": config, "cube_id": cube.cube_id, "region": cube.region, "label": spec.REGION_INDEX[cube.region],
                     "z": z, "z_abs": z + cube.z_offset, "split": split}
                    for z in zs
                ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def cubes() -> dict[str, Cube]:
    return {f"main_{r}": _synthetic_cube(r, i) for i, r in enumerate(spec.REGIONS)}


@pytest.fixture(scope="module")
def split_index(cubes) -> pd.DataFrame:
    return _split_index(cubes)


@pytest.fixture
def params() -> dict:
    base = yaml.safe_load((CONF / "base" / "parameters_segmentation.yml").read_text())["segmentation"]
    base = copy.deepcopy(base)
    base["train"].update(samples_per_epoch=8, crop_yx=32, batch_size=4)
    for entry in base["model_settings"].values():
        entry.pop("train", None)
    base["evaluation"].update(max_slices_per_cube=8)
    return base


TRAINING = {"accelerator": "cpu", "progress_bar": False, "deterministic": True, "torch_threads": "auto"}


def test_label_settings_follow_the_paper():
    three, four = nodes.SETTINGS["seg_3class"], nodes.SETTINGS["seg_4class"]
    raw = np.array([0, 1, 2, 3], dtype=np.uint64)
    assert three.map_labels(raw).tolist() == [0, 1, 2, 0]  # axon -> background
    assert four.map_labels(raw).tolist() == [0, 1, 2, 3]
    assert three.classes == ("background", "vessel", "cell") and four.num_classes == 4
    with pytest.raises(nodes.SegmentationError, match="pixel_labels"):
        four.map_labels(np.array([5]))
    with pytest.raises(nodes.SegmentationError, match="segmentation.settings"):
        nodes.label_setting("seg_5class")


def test_prepared_blocks_follow_the_split_index(cubes, split_index, params):
    data = nodes.prepare_segmentation_data(cubes, split_index, params)
    assert data["source"] == "phantom"
    four = data["blocks"]["seg_4class"]
    assert {b.cube_id for b in four["train"]} == {"main_CTX", "main_STR", "main_VP"}  # no ZI
    train_val = nodes._blocks(data, "seg_3class", ["train", "val"])
    assert len(train_val) == 4 and all(b.z.tolist() == list(range(26)) for b in train_val)  # merged
    test = nodes.centred_blocks(nodes._blocks(data, "seg_3class", ["test"]), 8)
    assert all(b.z.tolist() == list(range(30, 38)) for b in test)
    cube = cubes["main_STR"]
    block = next(b for b in test if b.cube_id == "main_STR")
    np.testing.assert_array_equal(block.image, cube.image[30:38])
    assert (block.labels[cube.pixel_labels[30:38] == spec.AXON] == 0).all()


def test_runs_and_patch_origins():
    assert [r.tolist() for r in contiguous_runs(np.array([5, 3, 4, 9, 10]))] == [[3, 4, 5], [9, 10]]
    blocks = [Block("a", "CTX", np.arange(20), np.zeros((20, 4, 4), np.uint8), np.zeros((20, 4, 4), np.uint8))]
    assert patch_origins(blocks, 8) == [(0, 0), (0, 8)]  # non-overlapping, remainder dropped
    assert len(patch_origins(blocks, 1)) == 20


def test_augmentation_moves_image_and_labels_together():
    import torch

    torch.manual_seed(0)
    labels = np.random.default_rng(0).integers(0, 4, (8, 16, 16)).astype(np.uint8)
    image = (labels * 50 + 7).astype(np.uint8)
    seen = set()
    for _ in range(20):
        img, lab = augment(image, labels, flip=True, rot90=True, flip_z=True)
        np.testing.assert_array_equal(img, lab * 50 + 7)
        seen.add(img.tobytes())
    assert len(seen) > 4  # it does transform

    block = Block("a", "CTX", np.arange(8), image, labels)
    dataset = PatchDataset([block], dims=3, depth=8, crop_yx=12, mean=0.5, std=0.25)
    x, y = dataset[0]
    assert tuple(x.shape) == (1, 8, 12, 12) and tuple(y.shape) == (1, 8, 12, 12)
    np.testing.assert_allclose(x.numpy(), ((y.numpy() * 50 + 7) / 255 - 0.5) / 0.25, rtol=1e-5)


@pytest.mark.parametrize("model,setting", [("pspnet", "seg_3class"), ("unet3d", "seg_4class")])
def test_train_and_evaluate_one_run(cubes, split_index, params, model, setting):
    data = nodes.prepare_segmentation_data(cubes, split_index, params)
    net, predictions, rows = nodes.train_and_evaluate(data, params, TRAINING, model=model, setting=setting, seed=0)
    label = nodes.SETTINGS[setting]
    assert rows["class"].tolist() == [*label.classes, "mean"]
    assert rows[["f1", "iou"]].stack().between(0, 1).all()
    assert set(rows.columns) >= {"source", "model", "dims", "setting", "seed", "class", "f1", "iou"}
    assert rows["dims"].unique().tolist() == (["2D"] if model == "pspnet" else ["3D"])
    assert rows["setting"].unique().tolist() == [label.label]
    regions = {"main_CTX", "main_STR", "main_VP"} | ({"main_ZI"} if setting == "seg_3class" else set())
    assert set(predictions) == regions
    for cube_id, p in predictions.items():
        assert p["prediction"].shape == (8, SIZE, SIZE) and p["prediction"].dtype == np.uint8
        assert p["z"].tolist() == list(range(30, 38))
    assert int(rows["support_pixels"].iloc[-1]) == len(regions) * 8 * SIZE * SIZE
    assert net.metadata["classes"] == list(label.classes) and net.factory_spec["kwargs"]["architecture"] == model
    # same seed, same result
    _, again, rows2 = nodes.train_and_evaluate(data, params, TRAINING, model=model, setting=setting, seed=0)
    pd.testing.assert_frame_equal(rows.drop(columns="train_seconds"), rows2.drop(columns="train_seconds"))


def _fake_rows(model: str, setting: str, seed: int) -> pd.DataFrame:
    label = nodes.SETTINGS[setting]
    classes = [*label.classes, "mean"]
    return pd.DataFrame(
        {"source": "phantom", "model": model, "dims": "2D", "setting": label.label, "config": setting, "seed": seed,
         "class": classes, "class_index": [*range(label.num_classes), -1], "f1": 0.5, "iou": 0.4}
    )


def test_collect_and_figure(cubes, split_index, params):
    tables = [_fake_rows(m, s, k) for m in ("unet", "manet") for s in ("seg_4class", "seg_3class") for k in (1, 0)]
    table = nodes.collect_segmentation_results(*tables)
    assert len(table) == 2 * 2 * (4 + 5)
    first = table.iloc[:4]
    assert first["model"].unique().tolist() == ["unet"] and first["class"].tolist()[-1] == "mean"

    params = {**params, "models": ["manet", "unet3d"], "seeds": 1, "figure": {"models": ["manet", "unet3d"], "seed": 0}}
    data = nodes.prepare_segmentation_data(cubes, split_index, params)
    wanted = nodes.figure_inputs(params)
    assert set(wanted) == {"manet__seg_3class", "manet__seg_4class", "unet3d__seg_3class", "unet3d__seg_4class"}
    preds = {
        key: {b.cube_id: {"z": b.z, "prediction": b.labels} for b in nodes._blocks(data, setting, ["test"])}
        for key, (_, setting, _) in wanted.items()
    }
    fig = nodes.plot_segmentation_overlays(data, params, **preds)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == (4 + 3) * 4  # rows: 4 regions (3-class) + 3 (4-class); image, truth, 2 models


def test_pipeline_has_one_node_per_run_and_catalog_patterns_resolve(params):
    params = {**params, "models": ["unet", "vnet"], "seeds": [0, 3]}
    pipeline = create_pipeline(parameters=params)
    runs = [n for n in pipeline.nodes if n.name.endswith(".train_and_evaluate")]
    assert sorted(n.name for n in runs) == sorted(
        f"segmentation.{m}.{s}.seed{k}.train_and_evaluate" for m in ("unet", "vnet") for s in params["settings"] for k in (0, 3)
    )
    assert pipeline.inputs() == {"cubes", "split_index", "params:segmentation", "params:training"}
    assert {"task2_segmentation", "task2_segmentation_overlays@matplotlib"} <= pipeline.outputs()

    conf = OmegaConfigLoader(conf_source=str(CONF), **CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(conf["catalog"], credentials=conf["credentials"])
    model_ds = catalog.get("segmentation.unet.seg_3class.seed3.trained_model")
    assert type(model_ds).__name__ == "TorchModelDataset"
    assert "06_models/segmentation/unet/seg_3class/seed3/model.pt" in str(model_ds._describe()["filepath"])
    preds_ds = catalog.get("segmentation.vnet.seg_4class.seed0.test_predictions")
    assert type(preds_ds).__name__ == "PickleDataset" and preds_ds._version is not None
    assert type(catalog.get("task2_segmentation")).__name__ == "CSVDataset"
    assert type(catalog.get("task2_segmentation_overlays@matplotlib")).__name__ == "MatplotlibDataset"
