"""``kedro predict``: a user's own volume through a trained model into an OME-Zarr labels image.

No training: a small U-Net from the project's factory with random weights (its class biases
centred on the test volume, so that every class occurs), saved as the segmentation pipeline
saves models, and indexed as a run of a data root's segmentation run index.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
import zarr
from click.testing import CliRunner
from kedro.io import Version

from mtneuro import spec
from mtneuro.cli import cli
from mtneuro.datasets.ome_zarr_store import read_map
from mtneuro.datasets.run_index import ArtifactReferenceDataset, RunIndexDataset
from mtneuro.datasets.torch_model import TorchModelDataset
from mtneuro.pipelines.segmentation.engine import normalise
from mtneuro.predict import predict_volume
from mtneuro.segmentation_models import build_segmentation_model

RUN = "unet.seg_4class.seed0"
MEAN, STD = 0.45, 0.12
# fp32 (no bf16 rounding), a halo over the test network's receptive field (69; the profile's 160 fits the base U-Net)
SETTINGS = "mapping.compute.precision=fp32,mapping.microstructure.halo_yx=80"


def _volume(shape: tuple[int, int, int] = (8, 64, 64)) -> np.ndarray:
    from scipy import ndimage

    noise = np.random.default_rng(0).normal(size=shape)
    smooth = ndimage.gaussian_filter(noise, (0, 3, 3))
    return np.clip(115 + 40 * smooth / smooth.std(), 0, 255).astype(np.uint8)


def _network() -> torch.nn.Module:
    torch.manual_seed(0)
    net = build_segmentation_model(
        "unet", 4, encoder_name="resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=[32, 16, 16]
    ).eval()
    net.metadata = {  # type: ignore[assignment]
        "model": "unet",
        "dims": 2,
        "mean": MEAN,
        "std": STD,
        "classes": ["background", "vessel", "cell", "axon"],
        "setting": "4-class",
    }
    head = net.model.segmentation_head[0]  # type: ignore[union-attr, index]
    with torch.no_grad():
        logits = net(torch.from_numpy(normalise(_volume(), MEAN, STD))[:, None])
        head.bias -= logits.median(dim=-1).values.median(dim=-1).values.median(dim=0).values
    return net


def _direct(net: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    """The network applied to every whole slice at once (no blocks, no halo)."""
    with torch.inference_mode():
        return net(torch.from_numpy(normalise(image, MEAN, STD))[:, None]).argmax(1).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose segmentation run index holds one run (the model saved as the pipeline does)."""
    root = tmp_path_factory.mktemp("predict") / "data"
    model = root / "06_models" / "segmentation" / "unet" / "seg_4class" / "seed0" / "model.pt"
    TorchModelDataset(filepath=str(model), version=Version(None, "2026-01-01T00.00.00.000Z")).save(_network())
    reference = ArtifactReferenceDataset(filepath=str(model), version=Version(None, None)).load()
    members = {"trained_model": {"type": "mtneuro.datasets.torch_model.TorchModelDataset"}}
    index = root / "06_models" / "segmentation" / "segmentation_runs.json"
    RunIndexDataset(filepath=str(index), members=members).save({RUN: {"trained_model": reference}})
    return root


@pytest.fixture(scope="module")
def tiff(data_root: Path) -> Path:
    path = data_root.parent / "my_volume.tif"
    tifffile.imwrite(path, _volume())
    return path


def _predict(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["predict", *args], catch_exceptions=False)
    return result.exit_code, result.output


def test_predict_writes_the_labels_of_the_model_as_an_ome_zarr_labels_image(data_root: Path, tiff: Path) -> None:
    out = data_root.parent / "my_volume.ome.zarr"
    code, output = _predict(
        "--input", str(tiff), "--model", RUN, "--data-root", str(data_root), "--output", str(out), "--env", "tiny",
        "--params", SETTINGS, "--device", "cpu",
    )  # fmt: skip
    assert code == 0, output
    assert f"run {RUN}" in output and str(out) in output and "napari" in output
    labels = zarr.open_group(str(out), mode="r")["labels/microstructure/0"]
    assert labels.shape == (8, 64, 64) and labels.dtype == np.uint8
    got = np.asarray(labels[...])
    assert set(np.unique(got)) <= set(spec.PIXEL_CLASSES) and len(np.unique(got)) >= 3
    # the tiny profile's blocks hold 2 slices: 4 blocks; a 2D network segments each slice alone
    want = _direct(TorchModelDataset(filepath=str(data_root / "06_models/segmentation/unet/seg_4class/seed0/model.pt"), version=Version(None, None)).load(), _volume())  # fmt: skip
    assert (got == want).mean() >= 0.999  # batch norms folded into the convolutions: a rare tie may flip
    # the brain map's label names and colours, and the input as the image
    brain_map = read_map(out)
    np.testing.assert_array_equal(np.asarray(brain_map.layers["image"][0]), _volume())
    assert brain_map.attributes["written_by"] == "kedro predict"
    image_label = dict(zarr.open_group(str(out / "labels" / "microstructure"), mode="r").attrs)["image-label"]
    assert [p["name"] for p in image_label["properties"]] == list(spec.PIXEL_CLASSES.values())
    assert image_label["colors"][1] == {"label-value": 1, "rgba": [220, 40, 40, 255]}
    # the same command again finds the store complete
    code, output = _predict(
        "--input", str(tiff), "--model", RUN, "--data-root", str(data_root), "--output", str(out), "--env", "tiny",
        "--params", SETTINGS, "--device", "cpu",
    )  # fmt: skip
    assert code == 0 and "complete already" in output, output


def test_blocks_of_a_model_file_show_no_seams(data_root: Path, tmp_path: Path) -> None:
    """In-plane blocks of 64 x 64, each read with a halo of 80 voxels (over the network's receptive
    field, 69), give the whole-slice labels: the engine's alignment leaves no seams."""
    image = _volume((2, 192, 192))
    tifffile.imwrite(tmp_path / "v.tif", image)
    model = data_root / "06_models" / "segmentation" / "unet" / "seg_4class" / "seed0" / "model.pt"
    params = {
        "mapping": {
            "blocks": {"shape_zyx": [2, 64, 64], "chunks_zyx": [2, 64, 64]},
            "compute": {"precision": "fp32"},
            "features": {"tile_size": 32},  # the map's tiles must not straddle its blocks
            "microstructure": {"halo_yx": 80},
        }
    }
    result = predict_volume(
        tmp_path / "v.tif", str(model), tmp_path / "v.ome.zarr", device="cpu", env="tiny", params=params, echo=str
    )
    assert result.blocks == 9
    got = np.asarray(zarr.open_group(str(tmp_path / "v.ome.zarr"), mode="r")["labels/microstructure/0"][...])
    assert (
        got == _direct(TorchModelDataset(filepath=str(model), version=Version(None, None)).load(), image)
    ).mean() >= 0.999


def test_user_errors_are_one_paragraph_and_exit_2(data_root: Path, tiff: Path, tmp_path: Path) -> None:
    out = str(tmp_path / "out.ome.zarr")
    missing = tmp_path / "nowhere.tif"
    code, output = _predict("--input", str(missing), "--model", RUN, "--data-root", str(data_root), "--output", out)
    assert code == 2 and str(missing) in output and "Traceback" not in output, output
    code, output = _predict("--input", str(tiff), "--model", "unet.seg_4class.seed9", "--data-root", str(data_root), "--output", out)  # fmt: skip
    assert code == 2 and f"Runs: {RUN}." in output and f"Did you mean {RUN}?" in output, output
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((4, 2, 16, 16), np.uint8), metadata={"axes": "ZCYX"}, imagej=True)
    code, output = _predict("--input", str(rgb), "--model", RUN, "--data-root", str(data_root), "--output", out)
    assert code == 2 and str(rgb) in output and "one channel" in output, output
    (tmp_path / "taken").mkdir()
    code, output = _predict("--input", str(tiff), "--model", RUN, "--data-root", str(data_root), "--output", str(tmp_path / "taken"))  # fmt: skip
    assert code == 2 and "is not a prediction of this command" in output, output
