"""The phantom against the real prasad2020 data (issue #10 item 8) and its dense-truth option.

Every statistic of :mod:`mtneuro.pipelines.reporting.calibration` is computed on phantom crops at the ROI
boxes (seed 0) and on the real data shipped in ``tests/data/prasad2020`` and must lie within 15 %
of the real value, except the few listed in :data:`KNOWN_GAPS` (docs/phantom-calibration.md),
which must at least stay within their listed tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtneuro import spec
from mtneuro.pipelines.reporting import calibration
from mtneuro.volumes import Window, open_volume, phantom

DATA = Path(__file__).resolve().parents[1] / "data" / "prasad2020"

#: (statistic, region) outside 15 % at seed 0 -> the tolerance they must stay within; see
#: docs/phantom-calibration.md. Their expected values (mean over seeds 0-7) are within 15 %
#: (:func:`test_expected_values_within_15_percent_over_seeds`); at seed 0 they miss because one
#: cube per region (32 images, like the real sample) scatters from seed to seed by 15-28 % of the
#: real value for these statistics: the VP cube of seed 0 holds fewer bundles (43 % axon vs 57 %
#: real; hence more cells, a darker VP and a smaller region spread), its STR cube more (21 %);
#: the blob-based rim statistic picks up bundle edges in STR and VP.
SEED_SCATTER = 0.45
KNOWN_GAPS: dict[tuple[str, str], float] = {
    ("rim_contrast", "STR"): SEED_SCATTER,
    # issue 24's held-out statistics made the capillaries round tubes: their compact profiles
    # are cell-sized dark blobs to the rim statistic too, and in VP they lie in the bright
    # bundles (cells do not), so their ring reads bright (seed 0: 12.3 vs 7.5; seed 1: 4.9)
    ("rim_contrast", "VP"): 0.7,
    ("axon_percent", "STR"): SEED_SCATTER,
    ("axon_percent", "VP"): SEED_SCATTER,
    ("cell_count", "VP"): SEED_SCATTER,
    ("vessel_percent_spread", "VP"): SEED_SCATTER,
    # Since issue 24 each region's brightness varies between cubes and slices as much as the
    # real section's 128-px tiles of one region do (slow 3D field, sd 6-7 gray levels): one
    # cube per region gives a spread of region means that scatters by several gray levels from
    # seed to seed (seed 0: 11.3 vs 14.4), and the blob rim statistic moves with the local
    # brightness (ZI 10.3 vs 12.3).
    ("region_mean_spread", "all"): 0.35,
    ("rim_contrast", "ZI"): SEED_SCATTER,
    # the slow gain field (sd 15 %, like the real 128-px tiles' texture spread) scales the texture
    # of one cube: seed 0's STR cube sits in a high-gain patch (fine texture +15.5 %)
    ("fine_texture", "STR"): SEED_SCATTER,
    # round capillary tubes (issue 24's held-out statistics): seed 0's ZI cube sits in a dense
    # patch of the capillary density field (31.9 px per profile vs 26.5; the expected value over
    # seeds 0-7 is within 15 %)
    ("vessel_component_area", "ZI"): SEED_SCATTER,
}
#: Seeds whose mean is the phantom's expected value of a statistic.
EXPECTED_SEEDS = range(8)
#: Expected values not within 15 %, with their tolerance: VP's cell rate is held low enough that
#: seed 0's VP cube (few bundles, so many cells) stays within tests/volumes/test_phantom.py's 25 %.
EXPECTED_GAPS: dict[tuple[str, str], float] = {
    ("cell_percent", "VP"): 0.25,
    ("cell_count", "VP"): 0.25,
    ("axon_percent_spread", "VP"): 0.25,  # -16 % with the same trade-off (bundle threshold -0.5)
    # the capillaries' compact profiles are blobs to the rim statistic too, and in VP they lie in
    # the bright bundles (KNOWN_GAPS): expected 9.6 vs 7.5 (+28 %)
    ("rim_contrast", "VP"): 0.35,
}


@pytest.fixture(scope="module")
def real() -> dict[str, calibration.RegionSample]:
    with np.load(DATA / "image_z309_roi_crops.npz") as crops, np.load(DATA / "pixel_labels_128.npz") as masks:
        return {r: calibration.RegionSample(crops=crops[r][None], masks=masks[r]) for r in spec.REGIONS}


@pytest.fixture(scope="module")
def table(real):
    phantom.clear_cache()
    return calibration.phantom_vs_real_table(calibration.phantom_samples(0), real, calibration.load_reference().palette)


def test_reference_package_data_is_the_shipped_real_data(real):
    ref = calibration.load_reference()
    assert ref.palette.dtype == np.uint8 and len(ref.palette) == 19
    for r in spec.REGIONS:
        np.testing.assert_array_equal(ref.crops[r], real[r].crops[0])
        np.testing.assert_array_equal(ref.masks[r], real[r].masks)
        # the real crops hold only palette levels
        assert set(np.unique(ref.crops[r]).tolist()) <= set(ref.palette.tolist())


def test_table_columns_and_coverage(table):
    for column in ("statistic", "region", "phantom", "real", "relative_difference", "within_tolerance"):
        assert column in table.columns
    stats = set(table["statistic"])
    assert set(calibration.IMAGE_STATISTICS) <= stats and set(calibration.MASK_STATISTICS) <= stats
    assert table[table.statistic == "mean_intensity"].shape[0] == 4
    assert table[table.statistic == "axon_percent_spread"]["region"].tolist() == ["STR", "VP"]
    assert np.isfinite(table["real"]).all() and np.isfinite(table["phantom"]).all()


def test_each_statistic_within_15_percent_of_real(table):
    misses = []
    for row in table.itertuples(index=False):
        key = (row.statistic, row.region)
        if key in KNOWN_GAPS:
            assert calibration.within_tolerance(row.statistic, row.phantom, row.real, KNOWN_GAPS[key]), row
        elif not row.within_tolerance:
            misses.append(f"{row.statistic} {row.region}: phantom {row.phantom:.3g}, real {row.real:.3g}")
    assert not misses, "\n".join(misses)


@pytest.mark.slow
def test_expected_values_within_15_percent_over_seeds(real):
    """The mean over seeds 0-7 of every statistic lies within 15 % of the real value (but EXPECTED_GAPS)."""
    palette = calibration.load_reference().palette
    tables = []
    for seed in EXPECTED_SEEDS:
        phantom.clear_cache()
        tables.append(calibration.phantom_vs_real_table(calibration.phantom_samples(seed), real, palette))
    mean = np.mean([t["phantom"].to_numpy() for t in tables], axis=0)
    first = tables[0]
    misses = [
        f"{s} {r}: mean {m:.3g}, real {q:.3g}"
        for s, r, q, m in zip(first["statistic"], first["region"], first["real"], mean)
        if not calibration.within_tolerance(s, float(m), float(q), EXPECTED_GAPS.get((s, r), calibration.TOLERANCE))
    ]
    assert not misses, "\n".join(misses)


def test_regions_differ_in_brightness_like_the_real_section(table):
    means = table[table.statistic == "mean_intensity"].set_index("region")
    assert means["phantom"].idxmax() == means["real"].idxmax() == "VP"


def test_drift_across_the_section_not_more_than_real():
    """CTX at z = 309: tile means and texture vary across the section like the real one, not more."""
    with np.load(DATA / "ctx_z309_pooled8.npz") as f:
        real_maps = {"mean": f["mean"], "local_std": f["local_std"]}
        y0, x0 = (int(v) for v in f["origin_yx"])
    real = calibration.drift_statistics(real_maps)
    h, w = (s * calibration.DRIFT_POOL for s in real_maps["mean"].shape)
    phantom.clear_cache()
    img = open_volume(spec.PHANTOM_URIS["image"]).read(Window(309, 310, y0, y0 + h, x0, x0 + w))[0]
    palette = calibration.load_reference().palette
    ph = calibration.drift_statistics(calibration.pooled_maps(calibration.quantise(img, palette)))
    assert 0.6 * real["tile_mean_std"] <= ph["tile_mean_std"] <= 1.15 * real["tile_mean_std"], (ph, real)
    # Texture varies less across the CTX band than on the real section (seed 0: 3.8 % vs 7.4 %,
    # seed 1: 5.5 %): the phantom's texture follows the tissue-edge profile and a slow field, the
    # real band's also its border with the corpus callosum (docs/phantom-calibration.md).
    assert 0.45 * real["tile_local_std_cv"] <= ph["tile_local_std_cv"] <= 1.15 * real["tile_local_std_cv"], (ph, real)
    # Brighter towards the top edge, as in the real section: since issue 24 the brightness follows
    # the real edge profile (a U across y, not a linear trend), so the band's linear slope is held
    # within 40 % (seed 0: -12.4 vs -16.9 per 1000 px); no trend along x.
    assert abs(ph["tile_mean_y_slope"] - real["tile_mean_y_slope"]) <= 0.4 * abs(real["tile_mean_y_slope"])
    assert abs(ph["tile_mean_x_slope"]) < 5.0 and abs(real["tile_mean_x_slope"]) < 5.0


def test_statistics_definitions():
    rng = np.random.default_rng(0)
    flat = np.full((64, 64), 120, np.uint8)
    assert calibration.local_std(flat) == pytest.approx(0.0, abs=1e-9)
    noisy = np.clip(120 + rng.normal(0, 20, (64, 64)), 0, 255).astype(np.uint8)
    assert calibration.local_std(noisy) > 3 and calibration.fine_texture(noisy) > 3
    stripes = np.tile((120 + 30 * np.sin(np.arange(64) * 2 * np.pi / 6)).astype(np.uint8), (64, 1))
    assert calibration.coherence(stripes) > 0.9 > calibration.coherence(noisy)
    # a dark disc with a bright rim
    yy, xx = np.mgrid[:64, :64]
    r = np.hypot(yy - 32, xx - 32)
    disc = np.where(r < 5, 60, np.where(r < 8, 160, 120)).astype(np.uint8)
    assert calibration.rim_contrast(disc) > 20
    assert np.isnan(calibration.rim_contrast(flat))
    q = calibration.quantise(np.arange(256, dtype=np.uint8), np.array([10, 100, 200], np.uint8))
    assert q[0] == 10 and q[60] == 100 and q[160] == 200 and q[255] == 200
    masks = np.zeros((2, 128, 128), np.uint8)
    masks[0, :10, :10] = spec.VESSEL
    masks[0, 50:52, 50:52] = spec.VESSEL
    stats = calibration.mask_statistics(masks)
    assert stats["vessel_components"] == 1.0 and stats["vessel_component_area"] == 52.0
    assert stats["vessel_percent"] == pytest.approx(100 * 104 / 16384 / 2)
    with pytest.raises(ValueError, match="at least 32"):
        calibration.local_std(np.zeros((8, 8), np.uint8))


def test_figure(table, real):
    fig = calibration.plot_phantom_vs_real(
        calibration.phantom_samples(0, image_z=(309,), mask_z=(300,)), real, table, calibration.load_reference().palette
    )
    assert len(fig.axes) >= 12


def test_samples_at_a_profile_cube_geometry():
    """centre=128 (the base profile's cubes): both sides keep only the centre of each box; the
    phantom's 32 label images per region are the 128-px centres of 4x as many slices."""
    reference = calibration.load_reference()
    real = calibration.samples_from_reference(reference, centre=128)
    assert all(real[r].crops.shape == (1, 128, 128) for r in spec.REGIONS)
    np.testing.assert_array_equal(real["CTX"].crops[0], reference.crops["CTX"][64:192, 64:192])
    ph = calibration.phantom_samples(0, image_z=(309,), mask_z=(300, 310), centre=128)
    assert ph["VP"].crops.shape == (1, 128, 128) and ph["VP"].masks.shape == (8, 128, 128)
    (_, (y0, _), (x0, _)) = spec.MAIN_CUBES["VP"]
    centre = open_volume(spec.PHANTOM_URIS["image"], seed=0).read(
        Window(309, 310, y0 + 64, y0 + 192, x0 + 64, x0 + 192)
    )
    np.testing.assert_array_equal(ph["VP"].crops[0], centre[0])
    with pytest.raises(ValueError, match="centre"):
        calibration.centre_crop(reference.crops["CTX"], 300)


# --------------------------------------------------------------------------------------------
# Dense truth (issue #13): validation only
# --------------------------------------------------------------------------------------------


def test_dense_labels_option():
    normal = open_volume(spec.PHANTOM_URIS["pixel_labels"], seed=0)
    dense = open_volume(spec.PHANTOM_URIS["pixel_labels"], seed=0, dense_labels=True)
    assert dense.dense_labels is True and normal.dense_labels is False
    assert "dense_labels=True" in repr(dense)
    # inside a main cube: identical to the normal channel
    (_, (y0, _), (x0, _)) = spec.MAIN_CUBES["STR"]
    inside = Window(300, 304, y0, y0 + 96, x0, x0 + 96)
    np.testing.assert_array_equal(dense.read(inside), normal.read(inside))
    # straddling the CTX main cube corner: dense equals normal inside, draws structures outside
    (_, (cy0, _), (cx0, _)) = spec.MAIN_CUBES["CTX"]
    w = Window(300, 304, cy0 - 64, cy0 + 64, cx0 - 64, cx0 + 64)
    d, n = dense.read(w), normal.read(w)
    assert d.dtype == n.dtype == np.uint64
    np.testing.assert_array_equal(d[:, 64:, 64:], n[:, 64:, 64:])
    outside = np.ones(d.shape, bool)
    outside[:, 64:, 64:] = False
    assert not n[outside].any()
    assert (d[outside] == spec.CELL).any() and (d[outside] == spec.VESSEL).any()
    # far from the main cubes (STR area outside its cube, other z): labels everywhere, with axons
    far = Window(600, 602, 300, 556, 3700, 3956)
    assert not normal.read(far).any()
    fd = dense.read(far)
    assert {spec.VESSEL, spec.CELL, spec.AXON} <= set(np.unique(fd).tolist())
    # outside the tissue: 0
    assert not dense.read(Window(300, 302, 0, 30, 2000, 2100)).any()
    # window consistency of the dense labels
    big = Window(600, 606, 300, 380, 3700, 3800)
    full = dense.read(big)
    np.testing.assert_array_equal(dense.read(Window(602, 604, 310, 350, 3720, 3790)), full[2:4, 10:50, 20:90])


def test_dense_labels_only_for_pixel_labels():
    from mtneuro.volumes import VolumeSourceError

    with pytest.raises(VolumeSourceError, match="dense_labels"):
        open_volume(spec.PHANTOM_URIS["image"], dense_labels=True)


def test_mapping_truth_uses_the_option():
    from mtneuro.pipelines.mapping.truth import dense_pixel_labels

    normal = open_volume(spec.PHANTOM_URIS["pixel_labels"], seed=3)
    w = Window(600, 602, 300, 360, 3700, 3760)
    expected = open_volume(spec.PHANTOM_URIS["pixel_labels"], seed=3, dense_labels=True).read(w)
    got = dense_pixel_labels(normal, w)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected.astype(np.uint8))
    assert got.any()


def test_held_out_statistics_definitions():
    """The held-out statistics on images and masks whose values are known."""
    masks = np.zeros((2, 128, 128), dtype=np.uint8)
    masks[0, 10:13, 10:13] = spec.VESSEL  # 9 px
    masks[0, 50:55, 50:55] = spec.VESSEL  # 25 px
    masks[1, 90:93, 20:25] = spec.VESSEL  # 15 px
    masks[0, 100:104, 100:104] = spec.CELL  # 16 px
    masks[1, 30:40, 30:40] = spec.CELL  # 100 px
    masks[1, 60:62, 60:62] = spec.CELL  # 4 px
    masks[1, :, 120:128] = spec.AXON  # a bundle 8 px wide at the border: distances 1..8 from x = 119
    stats = calibration.held_out_mask_statistics(masks)
    assert stats["vessel_component_median"] == 15.0
    assert stats["cell_area_p90"] == pytest.approx(np.percentile([16, 100, 4], 90))
    assert stats["cell_count_spread"] == pytest.approx(np.std([1, 2]))
    assert stats["axon_thickness"] == pytest.approx(2.0 * np.mean(np.arange(1, 9)))
    # autocorrelation: white noise decorrelates within ~2 px after the sigma-1 smoothing, a smooth
    # field far more slowly
    rng = np.random.default_rng(0)
    noise = np.clip(120 + 20 * rng.standard_normal((128, 128)), 0, 255).astype(np.uint8)
    yy, xx = np.indices((128, 128))
    smooth = (120 + 40 * np.sin(2 * np.pi * xx / 64) * np.sin(2 * np.pi * yy / 64)).astype(np.uint8)
    assert calibration.autocorrelation_length(noise) <= 3 < 8 <= calibration.autocorrelation_length(smooth)
    tails = calibration.held_out_image_statistics(np.where(xx < 12, 20, 120).astype(np.uint8))
    assert tails["dark_tail"] == pytest.approx(100 * 12 / 128) and tails["bright_tail"] == 0.0
