"""Tests of the synthetic prasad2020 phantom (``phantom://prasad2020/<channel>``)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mtneuro import spec
from mtneuro.volumes import SOURCE_PARAMETER, VolumeSourceError, Window, open_volume, phantom

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "prasad2020"

#: Statistics of the real masks, from the table of shared/data/prasad2020-sample/README.md:
#: vessel %, cell %, axon %, cells per 128x128 image, mean cell area (px), mean NN distance (px).
REAL_TABLE: dict[str, dict[str, float]] = {
    "CTX": {"vessel": 1.7, "cell": 2.6, "axon": 0.0, "cells": 12.5, "area": 34.0, "nn": 23.0},
    "STR": {"vessel": 1.9, "cell": 3.3, "axon": 17.3, "cells": 11.5, "area": 46.7, "nn": 23.5},
    "VP": {"vessel": 3.1, "cell": 2.5, "axon": 57.1, "cells": 7.4, "area": 55.3, "nn": 30.1},
    "ZI": {"vessel": 5.9, "cell": 5.5, "axon": 0.0, "cells": 14.6, "area": 62.3, "nn": 21.8},
}
TOLERANCE = 0.25
SLICES_PER_CUBE = 12  # x 4 quadrants = 48 images per region


def microstructure_stats(images: np.ndarray) -> dict[str, float]:
    """The README's statistics of a stack of 128x128 label images.

    Pixel fractions (%) over all pixels; cells are 4-connected components of label 2 in each
    image; cells / image is the mean count; the mean cell area pools all cells; the NN distance
    is, per image with >= 2 cells, the mean over its cells of the distance from the centroid to
    the nearest other centroid, averaged over those images.
    """
    images = np.asarray(images)
    counts, areas, nns = [], [], []
    for im in images:
        lab, n = ndimage.label(im == spec.CELL)  # default structure: 4-connectivity in 2D
        counts.append(n)
        if n:
            areas.extend(np.bincount(lab.ravel())[1:].tolist())
        if n >= 2:
            c = np.array(ndimage.center_of_mass(np.ones(lab.shape), lab, range(1, n + 1)))
            d = np.sqrt(((c[:, None, :] - c[None, :, :]) ** 2).sum(-1))
            np.fill_diagonal(d, np.inf)
            nns.append(d.min(axis=1).mean())
    return {
        "vessel": 100.0 * float(np.mean(images == spec.VESSEL)),
        "cell": 100.0 * float(np.mean(images == spec.CELL)),
        "axon": 100.0 * float(np.mean(images == spec.AXON)),
        "cells": float(np.mean(counts)),
        "area": float(np.mean(areas)),
        "nn": float(np.mean(nns)),
    }


def _window(region: str, z0: int | None = None, z1: int | None = None) -> Window:
    (cz0, cz1), (y0, y1), (x0, x1) = spec.MAIN_CUBES[region]
    return Window(cz0 if z0 is None else z0, cz1 if z1 is None else z1, y0, y1, x0, x1)


def _close(actual: float, expected: float, tol: float = TOLERANCE) -> bool:
    if expected == 0.0:
        return actual == 0.0
    return abs(actual - expected) <= tol * expected


@pytest.fixture(scope="module")
def vols():
    return {c: open_volume(spec.PHANTOM_URIS[c]) for c in phantom.CHANNELS}


@pytest.fixture(scope="module")
def quadrant_masks(vols) -> dict[str, np.ndarray]:
    """128x128 quadrants of SLICES_PER_CUBE pixel-label slices spread over each main cube."""
    out = {}
    for region, ((z0, z1), _, _) in spec.MAIN_CUBES.items():
        quads = []
        for z in np.linspace(z0, z1 - 1, SLICES_PER_CUBE).astype(int):
            s = vols["pixel_labels"].read(_window(region, int(z), int(z) + 1))[0].astype(np.uint8)
            quads += [s[:128, :128], s[:128, 128:], s[128:, :128], s[128:, 128:]]
        out[region] = np.stack(quads)
    return out


# --------------------------------------------------------------------------------------------
# Opening, metadata, errors
# --------------------------------------------------------------------------------------------


def test_open_metadata(vols):
    for channel, vol in vols.items():
        assert isinstance(vol, phantom.PhantomVolume)
        assert vol.shape == (720, 1420, 5805) == spec.VOLUME_SHAPE
        assert vol.voxel_size == (1.17, 1.17, 1.17)
        assert vol.uri == f"phantom://prasad2020/{channel}"
        assert vol.seed == 0
    assert vols["image"].dtype == np.uint8
    assert vols["roi_labels"].dtype == np.uint64
    assert vols["pixel_labels"].dtype == np.uint64
    w = Window(300, 302, 900, 910, 4600, 4620)
    for vol in vols.values():
        data = vol.read(w)
        assert data.shape == (2, 10, 20) and data.dtype == vol.dtype
    assert open_volume("phantom://prasad2020/image", seed=7, token="ignored").seed == 7


def test_unknown_channel_and_dataset():
    with pytest.raises(VolumeSourceError, match=SOURCE_PARAMETER.replace(".", r"\.")):
        open_volume("phantom://prasad2020/membranes")
    with pytest.raises(VolumeSourceError, match="membranes"):
        open_volume("phantom://prasad2020/membranes")
    with pytest.raises(VolumeSourceError, match=SOURCE_PARAMETER.replace(".", r"\.")):
        open_volume("phantom://otherdata/image")
    with pytest.raises(VolumeSourceError):
        phantom.PhantomVolume("nope")


def test_out_of_volume_window(vols):
    for vol in vols.values():
        for bad in ([715, 725, 0, 10, 0, 10], [0, 1, -5, 5, 0, 10], [0, 1, 0, 10, 5800, 5806], [3, 3, 0, 10, 0, 10]):
            with pytest.raises(VolumeSourceError, match="outside the volume"):
                vol.read(bad)
        with pytest.raises(VolumeSourceError):
            vol.sample_sections([720], 2)


# --------------------------------------------------------------------------------------------
# Determinism and window consistency
# --------------------------------------------------------------------------------------------


def test_determinism_and_seed():
    w = Window(200, 216, 600, 700, 3750, 3850)  # STR main cube: bundles, cells, vessels
    a = {c: open_volume(spec.PHANTOM_URIS[c], seed=0).read(w) for c in ("image", "pixel_labels")}
    phantom.clear_cache()
    b = {c: phantom.PhantomVolume(c, seed=0).read(w) for c in ("image", "pixel_labels")}
    phantom.clear_cache()
    c = {c: phantom.PhantomVolume(c, seed=1).read(w) for c in ("image", "pixel_labels")}
    for ch in ("image", "pixel_labels"):
        np.testing.assert_array_equal(a[ch], b[ch])
    assert np.mean(a["image"] != c["image"]) > 0.5
    assert np.mean(a["pixel_labels"] != c["pixel_labels"]) > 0.05
    # the layout (regions) does not depend on the seed
    np.testing.assert_array_equal(
        phantom.PhantomVolume("roi_labels", seed=0).sample_sections([0, 400], 3),
        phantom.PhantomVolume("roi_labels", seed=5).sample_sections([0, 400], 3),
    )


def _sub(big_data: np.ndarray, big: Window, w: Window) -> np.ndarray:
    return big_data[w.z0 - big.z0 : w.z1 - big.z0, w.y0 - big.y0 : w.y1 - big.y0, w.x0 - big.x0 : w.x1 - big.x0]


@pytest.mark.parametrize(
    "big",
    [
        Window(290, 330, 880, 990, 4580, 4700),  # CTX main-cube corner (labels in part of it)
        Window(300, 336, 1000, 1106, 3300, 3520),  # VP main cube -> internal capsule border
        Window(150, 190, 480, 560, 3680, 3780),  # STR main-cube corner, fibre bundles
        Window(0, 12, 0, 60, 2990, 3070),  # outside the tissue, volume corner
    ],
)
def test_window_matches_crop_of_larger_read(vols, big):
    rng = np.random.default_rng(big.x0)
    phantom.clear_cache()
    data = {c: vols[c].read(big) for c in phantom.CHANNELS}
    windows = []
    for _ in range(3):
        z0 = int(rng.integers(big.z0, big.z1 - 1))
        y0 = int(rng.integers(big.y0, big.y1 - 2))
        x0 = int(rng.integers(big.x0, big.x1 - 2))
        windows.append(
            Window(
                z0,
                int(rng.integers(z0 + 1, big.z1 + 1)),
                y0,
                int(rng.integers(y0 + 1, big.y1 + 1)),
                x0,
                int(rng.integers(x0 + 1, big.x1 + 1)),
            )
        )
    # a window whose border cuts through a cell (or a bundle) of the big read
    lab = data["pixel_labels"]
    hits = np.argwhere(lab == spec.CELL) if (lab == spec.CELL).any() else np.argwhere(data["image"] < 90)
    if len(hits):
        z, y, x = hits[len(hits) // 2]
        gz, gy, gx = big.z0 + z, big.y0 + y, big.x0 + x
        windows.append(Window(int(gz), min(big.z1, int(gz) + 5), big.y0, int(gy) + 1, int(gx), big.x1))
        windows.append(Window(big.z0, int(gz) + 1, int(gy), big.y1, big.x0, int(gx) + 1))
    for w in windows:
        for c in phantom.CHANNELS:
            np.testing.assert_array_equal(vols[c].read(w), _sub(data[c], big, w), err_msg=f"{c} {w}")


def test_cell_crossing_windows(vols):
    """Cells cut by a window border look the same from both sides."""
    big = _window("ZI", 300, 312)
    full = vols["pixel_labels"].read(big)
    assert (full == spec.CELL).sum() > 500
    cell = full == spec.CELL
    crossing = np.nonzero((cell[:, :-1] & cell[:, 1:]).any(axis=(0, 2)))[0] + 1
    for cut in crossing[[0, len(crossing) // 2, -1]]:  # the cut runs through a cell
        ymid = big.y0 + int(cut)
        top = vols["pixel_labels"].read(Window(big.z0, big.z1, big.y0, ymid, big.x0, big.x1))
        bottom = vols["pixel_labels"].read(Window(big.z0, big.z1, ymid, big.y1, big.x0, big.x1))
        np.testing.assert_array_equal(np.concatenate([top, bottom], axis=1), full)
        assert np.any(cell[:, cut - 1] & cell[:, cut])


def test_large_reads_are_blocked_transparently(vols, monkeypatch):
    w = Window(300, 306, 880, 960, 4580, 4660)
    phantom.clear_cache()
    whole = {c: vols[c].read(w) for c in ("image", "roi_labels")}
    monkeypatch.setattr(phantom.source, "MAX_BLOCK", 5_000)
    phantom.clear_cache()
    for c in ("image", "roi_labels"):
        np.testing.assert_array_equal(vols[c].read(w), whole[c])


# --------------------------------------------------------------------------------------------
# Labels and layout
# --------------------------------------------------------------------------------------------


def test_roi_labels_in_main_cubes(vols):
    for region in spec.REGIONS:
        roi = vols["roi_labels"].read(_window(region))
        assert roi.dtype == np.uint64
        assert np.all(roi == spec.BRAIN_AREA_VALUES[region]), region


def test_region_layout_along_x(vols):
    sec = vols["roi_labels"].sample_sections([100, 309, 600], 2)
    assert set(np.unique(sec).tolist()) <= set(spec.BRAIN_AREA_VALUES.values())
    xs = np.arange(sec.shape[2]) * 4
    centre = {}
    for region in spec.REGIONS:
        m = sec == spec.BRAIN_AREA_VALUES[region]
        assert m.any(), region
        centre[region] = float(xs[np.nonzero(m.any(axis=(0, 1)))[0]].mean())
        # the safe box of the region holds only that region
        box = phantom.safe_region_box(region)
        (y0, y1), (x0, x1) = box["y"], box["x"]
        inside = sec[:, (y0 + 3) // 4 : y1 // 4, (x0 + 3) // 4 : x1 // 4]
        assert np.all(inside == spec.BRAIN_AREA_VALUES[region]), region
        # room for 3 extra 256x256 columns that avoid the main cube
        assert (x1 - x0) * (y1 - y0) >= 4 * 256 * 256, region
    assert centre["ZI"] < centre["VP"] < centre["STR"] < centre["CTX"]
    assert sec[0, 0, 0] == 0  # outside the tissue


def test_pixel_label_values_and_main_cube_only(vols, quadrant_masks):
    for region, q in quadrant_masks.items():
        assert set(np.unique(q).tolist()) <= {0, 1, 2, 3}
        assert (q == spec.VESSEL).any() and (q == spec.CELL).any(), region
    # straddling the CTX main cube's corner: labels inside, zeros outside
    _, (y0, _), (x0, _) = spec.MAIN_CUBES["CTX"]
    w = Window(300, 304, y0 - 40, y0 + 40, x0 - 40, x0 + 40)
    lab = vols["pixel_labels"].read(w)
    assert lab.dtype == np.uint64
    inside = np.zeros(lab.shape, dtype=bool)
    inside[:, 40:, 40:] = True
    assert np.all(lab[~inside] == 0)
    assert np.any(lab[inside] != 0)
    # far from every main cube: zeros, although the image shows the same structures there
    far = Window(300, 302, 500, 756, 5100, 5356)  # CTX, outside the main cube
    assert not vols["pixel_labels"].read(far).any()
    img = vols["image"].read(far).astype(float)
    assert img.std() > 15 and (img < 80).mean() > 0.01
    # a z range outside the main cubes' [110, 470)
    assert not vols["pixel_labels"].read(_window("VP", 500, 503)).any()


def test_sample_sections(vols):
    roi = vols["roi_labels"]
    t = time.perf_counter()
    sec = roi.sample_sections([0, 309, 719], 4)
    assert time.perf_counter() - t < 1.0
    assert sec.shape == (3, 89, 363) and sec.dtype == np.uint64
    full = roi.read(Window(309, 310, 0, 1420, 0, 5805))[0]
    np.testing.assert_array_equal(roi.sample_sections([309], 0)[0], full)
    np.testing.assert_array_equal(roi.sample_sections([309], 2)[0], full[::4, ::4])
    np.testing.assert_array_equal(sec[1], full[::16, ::16])
    pl = vols["pixel_labels"].sample_sections([300], 3)[0]
    assert pl.shape == (178, 726) and pl.dtype == np.uint64
    in_cubes = np.zeros(pl.shape, dtype=bool)
    for region, (_, (y0, y1), (x0, x1)) in spec.MAIN_CUBES.items():
        jy = np.arange((y0 + 7) // 8, (y1 - 1) // 8 + 1)
        jx = np.arange((x0 + 7) // 8, (x1 - 1) // 8 + 1)
        direct = vols["pixel_labels"].read(Window(300, 301, y0, y1, x0, x1))[0]
        np.testing.assert_array_equal(pl[np.ix_(jy, jx)], direct[np.ix_(jy * 8 - y0, jx * 8 - x0)], err_msg=region)
        in_cubes[np.ix_(jy, jx)] = True
    assert not pl[~in_cubes].any()
    assert pl[in_cubes].any()


# --------------------------------------------------------------------------------------------
# Calibration on the real masks, separability
# --------------------------------------------------------------------------------------------


def test_calibration_table(quadrant_masks):
    for region, expected in REAL_TABLE.items():
        got = microstructure_stats(quadrant_masks[region])
        for key, value in expected.items():
            assert _close(got[key], value), f"{region} {key}: phantom {got[key]:.2f}, real {value}"


def test_against_real_masks(quadrant_masks):
    real = np.load(SAMPLE_DIR / "pixel_labels_128.npz")
    for region in spec.REGIONS:
        masks = real[region]
        assert masks.shape == (32, 128, 128)
        r = microstructure_stats(masks)
        # the README's table was computed the same way
        for key, value in REAL_TABLE[region].items():
            assert _close(r[key], value, 0.03) or abs(r[key] - value) < 0.06, (region, key, r[key], value)
        p = microstructure_stats(quadrant_masks[region])
        for key in r:
            assert _close(p[key], r[key]), f"{region} {key}: phantom {p[key]:.2f}, real {r[key]:.2f}"


def test_mean_std_alone_do_not_solve_region_classification(vols):
    """Real regions differ in brightness (means spread ~13 gray levels), so mean and std carry some
    of the region, but not all of it. On these full 256-px main-cube sections (4 training blocks)
    four statistics (with the 10th / 90th percentile) still reach 0.93 at seed 0 after issue 24;
    on the base profile's 128-px Task 1 images 0.885 on ROI-C1, 0.52 / 0.63 on ROI-C2 / C3
    (benchmarks/intensity_separability.py; the real section's whole-area 128-px tiles: 0.74)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    blocks = [(125, 137), (205, 217), (285, 297), (365, 377), (422, 434), (452, 464)]
    x_tr, y_tr, x_te, y_te = [], [], [], []
    for k, region in enumerate(spec.REGIONS):
        for z0, z1 in blocks:
            cube = vols["image"].read(_window(region, z0, z1)).astype(np.float32)
            feats = np.stack([cube.mean(axis=(1, 2)), cube.std(axis=(1, 2))], axis=1)
            if z0 >= spec.SPLITS_Z["test"][0]:
                x_te.append(feats)
                y_te += [k] * len(feats)
            else:
                x_tr.append(feats)
                y_tr += [k] * len(feats)
            # gray tissue, like the real section (mean ~ 115-135, std ~ 20-35)
            assert 105 < cube.mean() < 145 and 18 < cube.std() < 38, (region, z0)
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(np.concatenate(x_tr), y_tr)
    acc = clf.score(np.concatenate(x_te), y_te)
    assert acc < 0.95, acc


def test_image_appearance(vols):
    """Vessels darkest, cells dark, bundles bright, outside the tissue near 0."""
    w = _window("STR", 300, 308)
    img = vols["image"].read(w).astype(float)
    lab = vols["pixel_labels"].read(w)
    bg = img[lab == 0].mean()
    vessel, cell, axon = (img[lab == v].mean() for v in (spec.VESSEL, spec.CELL, spec.AXON))
    assert vessel < cell - 10 < bg - 20
    assert axon > bg + 15
    outside = vols["image"].read(Window(300, 302, 0, 40, 2000, 2100))
    assert outside.mean() < 20
    # slow drift across the section: another cube of the region differs in brightness, but by no
    # more than the real CTX tiles of section z = 309 do (range 109-126, docs/phantom-calibration.md)
    main = vols["image"].read(_window("CTX", 300, 304)).astype(float)
    other = vols["image"].read(Window(300, 304, 600, 856, 5300, 5556)).astype(float)
    assert 1.0 < abs(main.mean() - other.mean()) < 17


#: Largest |shift| of a split statistic, in training-slice standard deviations (seed 0 after issue
#: 24: at most 1.17, STR std; before, VP's vessel fraction +1.81, ZI's mean gray +1.80).
MAX_SPLIT_SHIFT = 1.3


@pytest.mark.slow
def test_main_cube_test_slices_look_like_training_slices(vols):
    """Each main cube's test slices (z 420-470) look like its training slices (110-410) at the
    base profile's Task 1 geometry (centre 128 px, area-averaged to 64 px): the four gray-level
    statistics of the intensity control and the vessel and axon fractions shift by at most
    MAX_SPLIT_SHIFT training-slice sds (issue 24, docs/phantom-calibration.md)."""
    from mtneuro.pipelines.reporting import calibration

    train = (spec.SPLITS_Z["train"][0], spec.SPLITS_Z["val"][1])
    shifts = {}
    for region in spec.REGIONS:
        (z0, z1), (y0, y1), (x0, x1) = spec.MAIN_CUBES[region]
        window = Window(z0, z1, y0 + 64, y1 - 64, x0 + 64, x1 - 64)
        images = vols["image"].read(window)
        labels = vols["pixel_labels"].read(window)
        phantom.clear_cache()
        stats = calibration.section_split_statistics(images, labels.astype(np.uint8))
        shifts[region] = calibration.split_shift(stats, np.arange(z0, z1), train, spec.SPLITS_Z["test"])
    worst = {r: max(s.items(), key=lambda kv: abs(kv[1])) for r, s in shifts.items()}
    assert all(abs(v) <= MAX_SPLIT_SHIFT for _, v in worst.values()), worst
