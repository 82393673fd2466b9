"""Task 1 (classification): SSL building blocks, every method on a tiny synthetic set, the read-out,
the frozen-encoder dataset, and the nodes on synthetic cubes. Tiny sizes: seconds per test."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from kedro.io.core import Version
from scipy import ndimage

from mtneuro import models, run_grid, spec, ssl
from mtneuro.cubes import Cube, CubeSpec
from mtneuro.datasets.frozen_encoder import FrozenEncoderDataset
from mtneuro.pipelines.classification import nodes
from mtneuro.pipelines.classification.pipeline import create_pipeline
from mtneuro.volumes import Window

HARDWARE = {"accelerator": "cpu", "progress_bar": False, "deterministic": True, "torch_threads": 1, "dataloader": {"num_workers": 0}}
ROI_C1_TRAIN, ROI_C1_TEST = (110, 380), (420, 470)


# --------------------------------------------------------------------------------------------
# Synthetic data: region-dependent texture
# --------------------------------------------------------------------------------------------


def _texture(region: str, shape: tuple[int, int, int], rng: np.random.Generator, shift: float = 0.0) -> np.ndarray:
    """uint8 sections whose texture depends on the region (not on mean intensity)."""
    z, h, w = shape
    noise = rng.standard_normal(shape)
    if region == "CTX":  # fine grain
        img = ndimage.gaussian_filter(noise, (0, 0.6, 0.6))
    elif region == "STR":  # coarse blobs
        img = ndimage.gaussian_filter(noise, (0, 2.5, 2.5))
    elif region == "VP":  # streaks along both axes (unchanged by flips and 90-degree rotations)
        img = ndimage.gaussian_filter(noise, (0, 0.5, 4.0)) + ndimage.gaussian_filter(rng.standard_normal(shape), (0, 4.0, 0.5))
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
            split = np.where((z_abs >= 110) & (z_abs < 380), "train",
                             np.where((z_abs >= 380) & (z_abs < 410), "val",
                                      np.where((z_abs >= 420) & (z_abs < 470), "test", "")))
            for config in ("roi_c1", "roi_c2", "roi_c3"):
                s = split if config == "roi_c1" else np.where(np.isin(split, ["train", "val"]), split, "")
                rows.append(pd.DataFrame({"config": config, "cube_id": cube.cube_id, "region": cube.region, "label": label,
                                          "z": z, "z_abs": z_abs, "split": s}))
        elif cube.cube_id.endswith("_0"):
            rows.append(pd.DataFrame({"config": "roi_c3", "cube_id": cube.cube_id, "region": cube.region, "label": label,
                                      "z": z, "z_abs": z_abs, "split": "train"}))
        else:
            for config in ("roi_c2", "roi_c3"):
                rows.append(pd.DataFrame({"config": config, "cube_id": cube.cube_id, "region": cube.region, "label": label,
                                          "z": z, "z_abs": z_abs, "split": "test"}))
    index = pd.concat(rows, ignore_index=True)
    return index[index["split"] != ""].reset_index(drop=True)


def tiny_params() -> dict:
    return {
        "methods": list(nodes.METHODS),
        "configs": ["roi_c1", "roi_c3"],
        "seeds": [0],
        "evaluate_on": {"roi_c1": ["roi_c1", "roi_c2"], "roi_c3": ["roi_c3"]},
        "data": {"train_splits": ["train", "val"], "train_slice_step": 6, "test_splits": ["test"], "test_slice_step": 6,
                 "prepared_size": 16},
        "encoder": {"name": "resnet18", "in_channels": 1, "representation_dim": 32, "width": 8, "stem": "small", "input_size": 16},
        "network_training": {"epochs": 4, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9,
                             "weight_decay": 0.0005, "lr_schedule": "constant", "warmup_epochs": 0, "augment": True},
        "augmentation": {"crop_scale": [0.6, 1.0], "flip": True, "rot90": True, "brightness": 0.2, "contrast": 0.2,
                         "blur_prob": 0.3, "blur_sigma": [0.1, 0.8], "noise_std": 0.02},
        "supervised": {"dropout": 0.2},
        "mixup": {"alpha": 0.4},
        "byol": {"projector_hidden": 32, "projector_out": 16, "predictor_hidden": 32, "momentum_base": 0.99},
        "myow": {"mined_weight": 0.1, "ramp_epochs": 1, "k": 1},
        "myow_merged": {},
        "decomposition": {"input_size": 16, "n_components": 16},
        "pca": {"svd_solver": "full"},
        "nmf": {"init": "nndsvda", "max_iter": 60, "tol": 0.0, "history_chunks": 3},
        "readout": {"C": 1.0, "max_iter": 500},
        "method_overrides": {},
    }


@pytest.fixture(scope="module")
def synthetic() -> tuple[dict[str, Cube], pd.DataFrame]:
    cubes = make_cubes()
    return cubes, make_split_index(cubes)


@pytest.fixture(scope="module")
def images(synthetic) -> dict:
    cubes, index = synthetic
    data, summary = nodes.prepare_images(cubes, index, tiny_params())
    assert summary["source"] == "phantom"
    return data


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def test_miner_returns_true_nearest_neighbours():
    gen = torch.Generator().manual_seed(0)
    reps = torch.randn(40, 12, generator=gen)
    got = ssl.nearest_neighbours(reps, reps, k=3, exclude=torch.arange(40)).numpy()
    unit = reps.numpy() / np.linalg.norm(reps.numpy(), axis=1, keepdims=True)
    for i in range(40):
        dist = [1 - float(unit[i] @ unit[j]) if j != i else np.inf for j in range(40)]  # brute-force cosine distance
        assert list(got[i]) == list(np.argsort(dist, kind="stable")[:3])
    mined = ssl.mine_views(reps, k=1).numpy()
    assert (mined == got[:, 0]).all() and (mined != np.arange(40)).all()
    queries, pool = torch.randn(7, 12, generator=gen), torch.randn(25, 12, generator=gen)
    got = ssl.nearest_neighbours(queries, pool, k=2).numpy()
    sims = (queries / queries.norm(dim=1, keepdim=True)) @ (pool / pool.norm(dim=1, keepdim=True)).T
    assert (got == np.argsort(-sims.numpy(), axis=1, kind="stable")[:, :2]).all()


def test_byol_target_update_is_a_momentum_average():
    torch.manual_seed(0)
    online = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4))
    target = copy.deepcopy(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
        online[1].running_mean.fill_(0.5)
    before = [p.clone() for p in target.parameters()]
    ssl.momentum_update(online, target, tau=0.9)
    for p_t, p_old, p_o in zip(target.parameters(), before, online.parameters(), strict=True):
        torch.testing.assert_close(p_t, 0.9 * p_old + 0.1 * p_o)
    torch.testing.assert_close(target[1].running_mean, online[1].running_mean)
    # cosine schedule from the base momentum to 1
    assert ssl.cosine_momentum(0, 100, 0.996) == pytest.approx(0.996)
    assert ssl.cosine_momentum(50, 100, 0.996) == pytest.approx(0.998)
    assert ssl.cosine_momentum(100, 100, 0.996) == pytest.approx(1.0)
    assert ssl.ramp_weight(0, 0.1, 10) == 0 and ssl.ramp_weight(5, 0.1, 10) == pytest.approx(0.05)
    assert ssl.ramp_weight(20, 0.1, 10) == pytest.approx(0.1)


def test_target_network_follows_online_network_during_training():
    torch.manual_seed(0)
    module = ssl.RepresentationLearner("byol", {"representation_dim": 8, "width": 4, "stem": "small"},
                                       {"projector_hidden": 8, "projector_out": 4, "predictor_hidden": 8, "momentum_base": 0.9},
                                       steps_per_epoch=10, epochs=1)
    with torch.no_grad():
        for p in module.encoder.parameters():
            p.add_(1.0)
    old = [p.clone() for p in module.target_encoder.parameters()]
    module.on_train_batch_end(None, None, 0)  # global_step 0: tau = base
    for p_t, p_old, p_o in zip(module.target_encoder.parameters(), old, module.encoder.parameters(), strict=True):
        torch.testing.assert_close(p_t, 0.9 * p_old + 0.1 * p_o)
    assert not any(p.requires_grad for p in module.target_encoder.parameters())


def test_mixup_makes_convex_combinations_of_inputs_and_one_hot_targets():
    torch.manual_seed(0)
    x = torch.randn(16, 1, 8, 8)
    y = torch.nn.functional.one_hot(torch.randint(0, 4, (16,)), 4).float()
    x_mix, y_mix, lam, perm = ssl.mixup(x, y, alpha=0.4)
    assert 0.0 <= lam <= 1.0
    assert sorted(perm.tolist()) == list(range(16))
    torch.testing.assert_close(x_mix, lam * x + (1 - lam) * x[perm])
    torch.testing.assert_close(y_mix, lam * y + (1 - lam) * y[perm])
    torch.testing.assert_close(y_mix.sum(dim=1), torch.ones(16))
    assert (y_mix >= 0).all() and (y_mix <= 1).all()
    x_fixed, y_fixed, _, _ = ssl.mixup(x, y, alpha=1.0, lam=0.25, perm=torch.arange(16).flip(0))
    torch.testing.assert_close(x_fixed, 0.25 * x + 0.75 * x.flip(0))
    torch.testing.assert_close(y_fixed, 0.25 * y + 0.75 * y.flip(0))


def test_augmentations_keep_shape_and_exact_geometry():
    torch.manual_seed(0)
    x = torch.rand(32, 1, 16, 16)
    out = ssl.augment_batch(x, tiny_params()["augmentation"])
    assert out.shape == x.shape and torch.isfinite(out).all()
    # flips and 90-degree rotations alone permute pixels exactly
    geo = ssl.random_geometry(x, (1.0, 1.0), flip=True, rot90=True)
    for a, b in zip(x, geo, strict=True):
        candidates = [torch.rot90(a, k, (1, 2)) for k in range(4)]
        candidates += [torch.flip(c, (2,)) for c in candidates]
        assert any(torch.allclose(b, c, atol=1e-5) for c in candidates)
    blurred = ssl.gaussian_blur(x, torch.full((32,), 1.0))
    assert blurred.std() < x.std()
    torch.testing.assert_close(blurred.mean(), x.mean(), atol=0.02, rtol=0)


def test_resnet_encoder_shapes_and_preprocessing():
    net = models.build_resnet18_encoder(width=8, representation_dim=256)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 256)
    assert sum(1 for m in net.modules() if isinstance(m, torch.nn.Conv2d)) == 20  # ResNet-18: 17 convs + 3 shortcuts
    small = models.build_resnet18_encoder(width=4, representation_dim=16, stem="small")
    assert small(torch.rand(3, 1, 8, 8)).shape == (3, 16)
    raw = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    direct = models.resize_images(raw, 16)
    via = models.resize_images(models.resize_images(raw, 32)[:, 0], 16)
    torch.testing.assert_close(direct, via)
    assert direct.shape == (3, 1, 16, 16) and 0 <= float(direct.min()) and float(direct.max()) <= 1


# --------------------------------------------------------------------------------------------
# Every method trains (loss goes down) and the read-out beats chance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ssl.NETWORK_METHODS)
def test_each_network_method_trains_and_its_loss_goes_down(images, method):
    params = tiny_params()
    params["network_training"]["epochs"] = 4
    if method in ssl.SUPERVISED_METHODS:
        encoder, readout, history = nodes.train_supervised(images, params, HARDWARE, method=method, config="roi_c1", seed=0)
    else:
        encoder, history = nodes.train_self_supervised(images, params, HARDWARE, method=method, config="roi_c1", seed=0)
        readout = nodes.fit_linear_readout(encoder, images, params, HARDWARE, config="roi_c1", seed=0)
    losses = [e["loss"] for e in history["epochs"]]
    assert len(losses) == 4 and all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses
    if method in ("myow", "myow_merged"):
        weights = [e["mined_weight"] for e in history["epochs"]]  # mean weight used in each epoch
        assert weights[0] < 0.1 and weights[-1] == pytest.approx(0.1)
    rows, cm = nodes.evaluate_run(encoder, readout, history, images, params, HARDWARE, method=method, config="roi_c1", seed=0)
    assert [r["config"] for r in rows] == ["ROI-C1", "ROI-C2"]
    assert all(0 <= r["accuracy"] <= 1 and 0 <= r["balanced_accuracy"] <= 1 for r in rows)
    assert cm.shape == (8, 6) and cm.filter(like="pred_").to_numpy().sum() == sum(r["n_test"] for r in rows)
    assert encoder.embed(np.zeros((3, 16, 16), np.uint8)).shape == (3, 32)


@pytest.mark.parametrize("method", nodes.DECOMPOSITION_METHODS)
def test_decompositions_fit_and_their_loss_goes_down(images, method):
    params = tiny_params()
    encoder, history = nodes.fit_decomposition(images, params, HARDWARE, method=method, config="roi_c1", seed=0)
    losses = [e["loss"] for e in history["epochs"]]
    assert len(losses) >= 2 and losses[-1] < losses[0], losses
    assert encoder.embed(np.full((2, 64, 64), 100, np.uint8)).shape == (2, 16)
    readout = nodes.fit_linear_readout(encoder, images, params, HARDWARE, config="roi_c1", seed=0)
    rows, _ = nodes.evaluate_run(encoder, readout, history, images, params, HARDWARE, method=method, config="roi_c1", seed=0)
    # (the synthetic regions differ in texture, not in a linear pixel pattern: no accuracy bar here)
    assert all(0 <= r["accuracy"] <= 1 for r in rows)


def test_supervised_learns_the_synthetic_regions(images):
    params = tiny_params()
    params["network_training"]["epochs"] = 8
    params["data"].update(train_slice_step=3, test_slice_step=1)  # 400 training, 200 test images
    encoder, readout, history = nodes.train_supervised(images, params, HARDWARE, method="supervised", config="roi_c1", seed=0)
    rows, _ = nodes.evaluate_run(encoder, readout, history, images, params, HARDWARE, method="supervised", config="roi_c1", seed=0)
    assert rows[0]["accuracy"] >= 0.7, rows[0]


def test_linear_readout_beats_chance_on_a_separable_toy_set():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, 10)) * 3

    class Identity:
        metadata: dict = {}

        def embed(self, x: np.ndarray) -> np.ndarray:
            return x.reshape(len(x), -1).astype(np.float32)

    labels = rng.integers(0, 4, 200)
    feats = centres[labels] + rng.normal(size=(200, 10))
    index = pd.DataFrame({"config": "roi_c1", "cube_id": "c", "region": "x", "label": labels, "z": np.arange(200),
                          "split": np.where(np.arange(200) < 150, "train", "test"), "row": np.arange(200)})
    data = {"images": feats[:, None, :], "index": index}
    params = {"data": {"train_splits": ["train"], "train_slice_step": 1, "test_splits": ["test"]}, "readout": {"C": 1.0}}
    clf = nodes.fit_linear_readout(Identity(), data, params, {}, config="roi_c1", seed=0)
    x_test, y_test = nodes.select_images(data, "roi_c1", ["test"])
    assert (clf.predict(Identity().embed(x_test)) == y_test).mean() > 0.9  # chance: 0.25


def test_training_is_repeatable_on_cpu(images):
    params = tiny_params()
    params["network_training"]["epochs"] = 1
    a, _ = nodes.train_self_supervised(images, params, HARDWARE, method="myow", config="roi_c1", seed=3)
    b, _ = nodes.train_self_supervised(images, params, HARDWARE, method="myow", config="roi_c1", seed=3)
    probe = (np.random.default_rng(0).random((4, 16, 16)) * 255).astype(np.uint8)
    np.testing.assert_array_equal(a.embed(probe), b.embed(probe))


# --------------------------------------------------------------------------------------------
# Data, parameters, results, datasets, pipeline
# --------------------------------------------------------------------------------------------


def test_prepare_and_select_follow_the_split_index(synthetic, images):
    cubes, index = synthetic
    assert images["images"].dtype == np.float32 and images["images"].shape[1:] == (16, 16)
    x, y = nodes.select_images(images, "roi_c1", ["train", "val"], 1)
    assert len(x) == 4 * 300 and np.bincount(y).tolist() == [300] * 4
    x2, _ = nodes.select_images(images, "roi_c2", ["test"])
    assert len(x2) == 4 * 2 * 360
    x3, _ = nodes.select_images(images, "roi_c3", ["train", "val"])
    assert len(x3) == 4 * 300 + 4 * 360
    xt, yt = nodes.select_images(images, "roi_c1", ["test"])
    z = index[(index.config == "roi_c1") & (index.split == "test")].sort_values(["cube_id", "z"])
    np.testing.assert_allclose(xt[0], cubes[z.iloc[0].cube_id].image[z.iloc[0].z] / 255.0, atol=1e-6)
    with pytest.raises(nodes.ClassificationError):
        nodes.prepare_images({}, index, tiny_params())
    small, _ = nodes.prepare_images(cubes, index, {**tiny_params(), "data": {**tiny_params()["data"], "prepared_size": 8}})
    too_big = tiny_params()  # input 16 > prepared 8 < raw 16: the frozen encoder would see other images
    with pytest.raises(nodes.ClassificationError, match="prepared_size"):
        nodes.fit_decomposition(small, too_big, HARDWARE, method="pca", config="roi_c1", seed=0)


def test_method_settings_inherit():
    params = {**tiny_params(), "method_overrides": {"myow_merged": {"epochs": 9}}}
    s = nodes.method_settings(params, "myow_merged")
    assert s["projector_hidden"] == 32 and s["mined_weight"] == 0.1 and s["epochs"] == 9 and "augmentation" in s
    assert nodes.method_settings(params, "mixup")["dropout"] == 0.2
    assert nodes.method_settings(params, "myow")["epochs"] == 4
    with pytest.raises(nodes.ClassificationError):
        nodes.method_settings(params, "simclr")


def test_frozen_encoder_dataset_round_trip(tmp_path: Path, images):
    params = tiny_params()
    params["network_training"]["epochs"] = 1
    encoder, _ = nodes.train_self_supervised(images, params, HARDWARE, method="byol", config="roi_c1", seed=0)
    pca, _ = nodes.fit_decomposition(images, params, HARDWARE, method="pca", config="roi_c1", seed=0)
    probe = (np.random.default_rng(1).random((5, 32, 32)) * 255).astype(np.uint8)
    for name, enc in [("byol", encoder), ("pca", pca)]:
        ds = FrozenEncoderDataset(filepath=str(tmp_path / name / "frozen_encoder"), version=Version(None, None))
        assert not ds.exists()
        ds.save(enc)
        assert ds.exists()
        loaded = FrozenEncoderDataset(filepath=str(tmp_path / name / "frozen_encoder"), version=Version(None, None)).load()
        assert isinstance(loaded, models.FrozenEncoder)
        np.testing.assert_allclose(loaded.embed(probe), enc.embed(probe), rtol=1e-5, atol=1e-5)
        folder = next((tmp_path / name / "frozen_encoder").glob("*/frozen_encoder"))
        meta = json.loads((folder / "metadata.json").read_text())
        assert meta["method"] == name and meta["input"]["size"] == 16 and "normalisation" in meta["input"]
        assert meta["seed"] == 0 and meta["train_config"] == "roi_c1"
        assert (folder / ("weights.pt" if name == "byol" else "decomposition.joblib")).exists()
    meta = encoder.metadata
    assert meta["architecture"] == {"name": "resnet18", "in_channels": 1, "representation_dim": 32, "width": 8, "stem": "small"}
    plain = FrozenEncoderDataset(filepath=str(tmp_path / "plain"))
    plain.save(encoder)
    plain.save(encoder)  # unversioned: replaced
    assert plain.load().metadata["method"] == "byol"


def test_collect_results_makes_the_task_table():
    runs = run_grid.expand_grid("classification", ["byol", "pca"], ["roi_c1", "roi_c3"], [0, 1])
    metrics = []
    for run in runs:
        tests = ["ROI-C1", "ROI-C2"] if run.config == "roi_c1" else ["ROI-C3"]
        metrics.append([{"method": run.method, "config": t, "seed": run.seed, "train_config": run.config.upper(),
                         "accuracy": 0.5, "balanced_accuracy": 0.4, "recall_CTX": 1.0, "train_seconds": 1.0} for t in tests])
    table, summary = nodes.collect_results({"source": "phantom"}, *metrics, runs=runs)
    assert list(table.columns[:6]) == ["source", "method", "config", "seed", "train_config", "accuracy"]
    assert len(table) == 2 * 3 * 2 and set(table["config"]) == {"ROI-C1", "ROI-C2", "ROI-C3"}
    assert (table["source"] == "phantom").all()
    assert len(summary) == 6 and (summary["seeds"] == 2).all()


def test_pipeline_has_one_subpipeline_per_run(monkeypatch):
    params = tiny_params()
    params["seeds"] = [0, 1]
    monkeypatch.setattr(run_grid, "task_parameters", lambda task: params)
    pipe = create_pipeline()
    names = {n.name for n in pipe.nodes}
    for method in nodes.METHODS:
        for config in ("roi_c1", "roi_c3"):
            for seed in (0, 1):
                ns = f"classification.{method}.{config}.seed{seed}"
                assert {f"{ns}.train", f"{ns}.evaluate"} <= names
                assert f"{ns}.frozen_encoder" in pipe.all_outputs()
                assert (f"{ns}.fit_readout" in names) == (method not in ssl.SUPERVISED_METHODS)
    assert pipe.inputs() == {"cubes", "split_index", "params:classification", "params:training"}
    assert pipe.outputs() >= {"task1_region_classification", "task1_region_classification_summary"}
    # runs are independent: a run's nodes read only the shared model input and parameters
    for method in nodes.METHODS:
        run = pipe.only_nodes_with_namespaces([f"classification.{method}.roi_c3.seed1"])
        assert run.inputs() == {"classification_images", "params:classification", "params:training"}
