"""Block seams do not show: a window mapped as one block equals the same window in 4 blocks
(microstructure, tissue mask, majority-filtered and raw regions)."""

from __future__ import annotations

import numpy as np
import pytest
from mapping_support import mapping_parameters

from mtneuro.pipelines.mapping import engine
from mtneuro.volumes import Window, open_volume


@pytest.mark.parametrize(
    "window",
    [
        Window(344, 345, 640, 896, 1536, 1792),  # interior
        Window(344, 345, 1164, 1420, 5549, 5805),
    ],  # the volume's corner (y and x end; x not a multiple of 16)
    ids=["interior", "volume-corner"],
)
def test_one_block_equals_four_blocks(window, segmentation_model, region_model):
    params = mapping_parameters("tiny")
    source = open_volume("phantom://prasad2020/image", seed=0)
    reader = engine.BlockReader(source, (2, 512, 512))
    seg = engine.MicrostructureNetwork.from_trained(segmentation_model, "unet")
    assert engine.check_halo(seg, params.microstructure.halo_yx) <= params.microstructure.halo_yx
    regions = engine.RegionModel(*region_model, "test")
    settings = engine.BlockSettings(
        halo_yx=params.microstructure.halo_yx,
        halo_z=0,
        slices_per_batch=1,
        workers=1,
        patch_size=params.regions.patch_size,
        stride=params.regions.stride,
        region_batch_size=256,
        tile_size=128,
        connectivity=4,
        feature_names=tuple(params.features.names),
        precision=engine.mapping_precision(params.compute.precision),
        majority_filter=True,
        tissue_threshold=params.tissue.threshold,
        tissue_window=params.tissue.window_yx,
    )
    layers = ("labels/microstructure", "labels/regions", "labels/regions_unsmoothed", "labels/tissue")

    def run(shape):
        out = {k: np.zeros(window.shape, np.uint8) for k in layers}
        for block in engine.block_windows(window, shape).values():
            result = engine.compute_block(block, window, reader, seg, regions, settings)
            rel = (
                slice(block.z0 - window.z0, block.z1 - window.z0),
                slice(block.y0 - window.y0, block.y1 - window.y0),
                slice(block.x0 - window.x0, block.x1 - window.x0),
            )
            for k in out:
                out[k][rel] = result[k]
        return out

    one = run(window.shape)
    four = run((window.shape[0], 128, 128))
    assert len(engine.block_windows(window, (window.shape[0], 128, 128))) == 4
    # a random network still predicts several classes, so equality is not trivial
    counts = np.bincount(one["labels/microstructure"].ravel(), minlength=4)
    assert (counts > 0.01 * counts.sum()).sum() >= 2, counts
    for k in layers:
        np.testing.assert_array_equal(one[k], four[k], err_msg=k)
    # outside the tissue every label is 0 (the corner window crosses the tissue edge)
    outside = one["labels/tissue"] == 0
    assert not one["labels/microstructure"][outside].any() and not one["labels/regions"][outside].any()
    if window.x1 == 5805:
        assert 0.05 < outside.mean() < 0.95


def test_tissue_mask_follows_the_phantom_tissue():
    params = mapping_parameters("base")
    window = Window(344, 346, 1000, 1420, 5300, 5805)  # the tissue's lower right edge
    image = open_volume("phantom://prasad2020/image", seed=0).read(window)
    truth = open_volume("phantom://prasad2020/roi_labels", seed=0).read(window) != 0
    mask = engine.tissue_mask(image, params.tissue.threshold, params.tissue.window_yx)
    assert 0.2 < truth.mean() < 0.8
    assert (mask & truth).sum() / (mask | truth).sum() > 0.95
    assert engine.tissue_mask(image, 64, 0).all()  # window 0: no mask


def test_majority_filter_smooths_single_cells_and_keeps_ties():
    cells = np.array(
        [
            [
                [1, 1, 1, 2, 2],
                [1, 3, 1, 2, 2],
                [1, 1, 1, 2, 2],
                [0, 0, 4, 4, 0],
            ]
        ],
        dtype=np.uint8,
    )
    out = engine.majority_filter(cells)
    assert out.shape == (1, 2, 3)
    # the lone 3 becomes 1; 0 cells stay 0 and do not vote; a tie keeps the cell's own label
    np.testing.assert_array_equal(out[0], [[1, 1, 2], [1, 1, 2]])
    tie = np.array([[[1, 1, 1], [2, 2, 2], [2, 1, 0]]], dtype=np.uint8)  # centre 2: four 1s, four 2s
    assert engine.majority_filter(tie)[0, 0, 0] == 2


def test_tile_disagreement_counts_cells_unlike_their_neighbours():
    from mtneuro.pipelines.mapping.nodes import tile_disagreement

    uniform = np.full((4, 5), 2, np.uint8)
    assert tile_disagreement(uniform) == (0, 20)
    noisy = uniform.copy()
    noisy[1, 1] = 3
    noisy[3, 4] = 0  # unlabelled: neither counted nor voting
    assert tile_disagreement(noisy) == (1, 19)


def test_halo_smaller_than_receptive_field_is_refused(segmentation_model):
    seg = engine.MicrostructureNetwork.from_trained(segmentation_model, "unet")
    with pytest.raises(engine.MappingError, match=r"mapping\.microstructure\.halo_yx"):
        engine.check_halo(seg, 64)


def test_batch_norms_fold_into_the_convolutions(segmentation_model):
    import torch

    folded = engine.fold_batch_norms(segmentation_model)
    assert folded is not segmentation_model
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in segmentation_model.modules())  # original untouched
    x = torch.randn(1, 1, 96, 160, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(folded(x), segmentation_model(x), rtol=1e-4, atol=1e-4)


def test_block_reads_tile_the_block_input():
    """Reads start at the block input's corner: no voxel outside it is requested."""
    source = open_volume("phantom://prasad2020/roi_labels", seed=0)
    requested = []

    class Recording:
        shape, dtype, uri = source.shape, source.dtype, source.uri

        def __getitem__(self, key):
            requested.append(key)
            return source[key]

    reader = engine.BlockReader(Recording(), (2, 100, 300))  # type: ignore[arg-type]
    data = reader.read((344, 130, 1000), (346, 330, 1450))
    np.testing.assert_array_equal(data, source.read(Window(344, 346, 130, 330, 1000, 1450)))
    boxes = [k for k in requested if all(s.stop > s.start for s in k)]
    assert min(k[1].start for k in boxes) == 130 and max(k[1].stop for k in boxes) == 330
    assert min(k[2].start for k in boxes) == 1000 and max(k[2].stop for k in boxes) == 1450
    assert sum(int(np.prod([s.stop - s.start for s in k])) for k in boxes) == data.size


def test_chunk_grid_has_a_boundary_at_the_origin():
    assert engine.chunk_grid(720, 32, 344)[:2] == (24, 32)
    assert sum(engine.chunk_grid(720, 32, 344)) == 720
    assert engine.chunk_grid(1420, 512) == (512, 512, 396)
    assert engine.chunk_grid(1420, 512, 100, 700) == (100, 512, 88, 424, 296)


def test_auto_precision_is_fp32_or_bf16():
    assert engine.mapping_precision("auto") in ("fp32", "bf16")
    assert engine.mapping_precision("fp32") == "fp32"
    assert engine.mapping_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="precision"):  # the schema allows auto, fp32, bf16 only
        mapping_parameters("tiny", {"compute": {"precision": "fp16"}})


def test_input_range_is_aligned_to_the_volume_grid():
    assert engine.input_range(300, 556, 160, 16, 1420) == (128, 720, 0)
    assert engine.input_range(0, 256, 160, 16, 1420) == (0, 416, 0)
    start, stop, pad = engine.input_range(5549, 5805, 160, 16, 5805)
    assert (start % 16, stop, (stop - start + pad) % 16) == (0, 5805, 0)
