"""The semantic features of Task 3 (the registry of mtneuro.features) on hand-made labels and on
real masks, and what adding a feature takes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtneuro import features as feat
from mtneuro import spec
from mtneuro.features import registry


def _disc(labels: np.ndarray, centre: tuple[int, int], radius: int, value: int = spec.CELL) -> None:
    rows, cols = np.indices(labels.shape)
    labels[(rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2] = value


def test_three_discs_of_known_area_and_spacing():
    labels = np.zeros((128, 128), dtype=np.uint8)
    for centre in [(40, 20), (40, 50), (40, 90)]:  # spacings 30 and 40
        _disc(labels, centre, 4)
    f = feat.image_features(labels)
    assert f["cell_count"] == 3
    assert f["mean_cell_area"] == 49  # a digital disc of radius 4: 49 pixels
    # nearest other centroid: 30, 30 (middle -> left), 40 -> mean 100/3 (the reference code's
    # averaging of each cell's zero self-distance would give half of that)
    assert f["mean_nn_distance"] == pytest.approx(100 / 3)
    assert f["vessel_fraction"] == 0.0
    assert f["axon_fraction"] == 0.0


def test_squares_give_exact_areas_and_centroids():
    labels = np.zeros((64, 64), dtype=np.uint8)
    labels[10:15, 10:15] = spec.CELL  # 25 px, centroid (12, 12)
    labels[10:13, 40:50] = spec.CELL  # 30 px, centroid (11, 44.5)
    areas, centroids = feat.cell_components(labels)
    assert sorted(areas.tolist()) == [25, 30]
    assert sorted(map(tuple, centroids.tolist())) == [(11.0, 44.5), (12.0, 12.0)]
    f = feat.image_features(labels)
    assert f["mean_cell_area"] == 27.5
    assert f["mean_nn_distance"] == pytest.approx(math.hypot(1.0, 32.5))


def test_cells_are_four_connected():
    labels = np.zeros((16, 16), dtype=np.uint8)
    labels[4, 4] = labels[5, 5] = spec.CELL  # touching only diagonally: two cells
    labels[10, 4] = labels[10, 5] = spec.CELL  # touching by an edge: one cell
    assert feat.image_features(labels)["cell_count"] == 3
    assert feat.image_features(labels, connectivity=8)["cell_count"] == 2
    # cells separated by another class stay separate
    labels = np.zeros((8, 8), dtype=np.uint8)
    labels[2, 1:4] = [spec.CELL, spec.VESSEL, spec.CELL]
    assert feat.image_features(labels)["cell_count"] == 2


def test_image_without_vessel_or_axon_pixels():
    labels = np.zeros((32, 32), dtype=np.uint8)
    _disc(labels, (16, 16), 3)
    f = feat.image_features(labels)
    assert f["vessel_fraction"] == 0.0 and f["axon_fraction"] == 0.0


def test_pixel_fractions():
    labels = np.zeros((10, 10), dtype=np.uint8)
    labels[:, :3] = spec.VESSEL  # 30 %
    labels[:5, 5:] = spec.AXON  # 25 %
    f = feat.image_features(labels)
    assert f["vessel_fraction"] == pytest.approx(0.30)
    assert f["axon_fraction"] == pytest.approx(0.25)
    assert f["cell_count"] == 0


def test_image_with_one_cell():
    labels = np.zeros((32, 32), dtype=np.uint8)
    labels[3:7, 20:26] = spec.CELL
    f = feat.image_features(labels)
    assert f["cell_count"] == 1
    assert f["mean_cell_area"] == 24
    assert math.isnan(f["mean_nn_distance"])  # undefined with one cell, never 0


def test_image_without_cells():
    f = feat.image_features(np.zeros((32, 32), dtype=np.uint8))
    assert f["cell_count"] == 0
    assert math.isnan(f["mean_cell_area"]) and math.isnan(f["mean_nn_distance"])
    assert f == {**f, "vessel_fraction": 0.0, "axon_fraction": 0.0}


def test_two_cells_nn_distance_excludes_self():
    labels = np.zeros((32, 32), dtype=np.uint8)
    labels[5, 5] = labels[5, 15] = spec.CELL
    assert feat.image_features(labels)["mean_nn_distance"] == pytest.approx(10.0)
    assert feat.nearest_neighbour_distances(np.array([[0.0, 0.0], [0.0, 0.0], [3.0, 4.0]])).tolist() == [0.0, 0.0, 5.0]
    assert len(feat.nearest_neighbour_distances(np.zeros((1, 2)))) == 0


def test_feature_keys_and_bad_input():
    f = feat.image_features(np.zeros((4, 4), dtype=np.uint8))
    assert tuple(f) == feat.feature_names()
    assert feat.feature_names() == (
        "vessel_fraction",
        "axon_fraction",
        "cell_count",
        "mean_cell_area",
        "mean_nn_distance",
        "cell_count_authors",  # features/authors.py: the authors' 3D labelling
        "mean_cell_area_authors",
        "mean_nn_distance_authors",
    )
    assert list(feat.image_features(np.zeros((4, 4), dtype=np.uint8), names=["cell_count"])) == ["cell_count"]
    with pytest.raises(ValueError, match="2-D"):
        feat.image_features(np.zeros((2, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="connectivity"):
        feat.image_features(np.zeros((4, 4), dtype=np.uint8), connectivity=6)


def test_tiles():
    assert list(feat.tiles(128, 128, None)) == [(0, 0, 128, 128)]
    assert list(feat.tiles(256, 256, 128)) == [
        (0, 0, 128, 128),
        (0, 128, 128, 128),
        (128, 0, 128, 128),
        (128, 128, 128, 128),
    ]
    with pytest.raises(ValueError, match="tile_size"):
        list(feat.tiles(100, 100, 128))


# README of ../shared/data/prasad2020-sample: cells / image, mean cell area, mean NN distance
README_TABLE = {
    "CTX": (12.5, 34.0, 23.0),
    "STR": (11.5, 46.7, 23.5),
    "VP": (7.4, 55.3, 30.1),
    "ZI": (14.6, 62.3, 21.8),
}
README_FRACTIONS = {  # vessel, axon (%)
    "CTX": (1.7, 0.0),
    "STR": (1.9, 17.3),
    "VP": (3.1, 57.1),
    "ZI": (5.9, 0.0),
}


def test_real_masks_agree_with_the_sample_statistics(sample_dir):
    masks = np.load(sample_dir / "pixel_labels_128.npz")
    for region, (count, area, nn) in README_TABLE.items():
        rows = [feat.image_features(image) for image in masks[region]]
        counts = np.array([r["cell_count"] for r in rows], dtype=float)
        areas = np.array([r["mean_cell_area"] for r in rows])
        nns = np.array([r["mean_nn_distance"] for r in rows])
        # as the README defines them: mean count per image; area pooled over all cells of the
        # region; NN distance averaged over the images with at least two cells
        assert counts.mean() == pytest.approx(count, rel=0.05), region
        assert np.nansum(counts * areas) / counts.sum() == pytest.approx(area, rel=0.05), region
        assert np.nanmean(nns) == pytest.approx(nn, rel=0.05), region
        assert np.isnan(nns).sum() == (counts < 2).sum()
        vessel = 100 * np.mean([r["vessel_fraction"] for r in rows])
        axon = 100 * np.mean([r["axon_fraction"] for r in rows])
        assert vessel == pytest.approx(README_FRACTIONS[region][0], abs=0.1), region
        assert axon == pytest.approx(README_FRACTIONS[region][1], abs=0.1), region


# --- the registry ---------------------------------------------------------------------------------


def test_every_feature_is_defined_once_with_label_description_and_dtype():
    for feature in feat.registered_features():
        assert feat.get_feature(feature.name) is feature
        assert feature.label and feature.description and feature.dtype in ("int64", "float64")
    assert feat.get_feature("mean_nn_distance").label == "Dist (k=1)"
    assert feat.get_feature("cell_count").dtype == "int64"
    with pytest.raises(feat.UnknownFeatureError, match="registered features: vessel_fraction, axon_fraction"):
        feat.get_feature("cell_cnt")
    with pytest.raises(ValueError, match="already registered"):
        feat.register(feat.get_feature("cell_count"))


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """Features registered by a test are forgotten after it."""
    registry.discover()
    monkeypatch.setattr(registry.FEATURES, "_plugins", dict(registry.FEATURES._plugins))


def test_adding_a_feature_is_one_registered_function_and_one_yaml_line(
    scratch_registry, project_path, cubes, split_index, encoder
):
    from mtneuro.config import load_parameters
    from mtneuro.pipelines.probing import nodes

    @feat.semantic_feature(
        "largest_cell_area", label="Largest Cell", description="pixels; NaN without cells", dtype="float64"
    )
    def largest_cell_area(image: feat.LabelImage) -> float:
        areas = image.cells[0]
        return float(areas.max()) if len(areas) else float("nan")

    assert feat.feature_names()[-1] == "largest_cell_area"
    features = [*feat.feature_names()]
    probing = load_parameters(project_path / "conf", "tiny", runtime_params={"probing": {"features": features}}).probing
    table, images = nodes.build_probing_dataset(cubes, split_index(cubes), probing)
    assert table.columns[-1] == "largest_cell_area" and table["largest_cell_area"].dtype == np.float64
    assert (table["largest_cell_area"].dropna() >= table["mean_cell_area"].dropna()).all()
    rows = nodes.probe_embeddings(table, nodes.embed_images(images, encoder(), probing), probing)
    assert rows["feature"].tolist() == features


TOY_MODULE = """
from mtneuro.features.image import LabelImage
from mtneuro.features.registry import semantic_feature


@semantic_feature("toy_background_fraction", label="Background", description="fraction of label 0", dtype="float64")
def toy_background_fraction(image: LabelImage) -> float:
    return image.fraction(0)
"""


def test_a_new_module_of_the_package_is_discovered_and_usable_from_yaml(
    scratch_registry, monkeypatch, tmp_path, project_path
):
    """One new module in mtneuro/features plus one YAML line: nothing else is edited. The module
    lives in a temporary folder added to the package's path (the source tree stays untouched)."""
    import sys

    import mtneuro.features as package
    from mtneuro.config import load_parameters

    # named to sort before "definitions": the paper's features must still come first
    (tmp_path / "aaa_toy_feature.py").write_text(TOY_MODULE)
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry.FEATURES, "_discovered", False)
    monkeypatch.delitem(sys.modules, "mtneuro.features.aaa_toy_feature", raising=False)
    try:
        names = feat.feature_names()  # first access: discovery imports the new module
        assert names[:5] == ("vessel_fraction", "axon_fraction", "cell_count", "mean_cell_area", "mean_nn_distance")
        assert names[-1] == "toy_background_fraction"
        assert feat.image_features(np.zeros((4, 4), dtype=np.uint8))["toy_background_fraction"] == 1.0
        probing = load_parameters(
            project_path / "conf",
            "tiny",
            runtime_params={"probing": {"features": ["toy_background_fraction", "cell_count"]}},
        ).probing
        assert probing.features == ["toy_background_fraction", "cell_count"]
    finally:
        sys.modules.pop("mtneuro.features.aaa_toy_feature", None)


def test_discovery_imports_every_module_of_the_package_definitions_first():
    import pkgutil
    import sys

    import mtneuro.features as package

    imported = [m.rpartition(".")[2] for m in registry.FEATURES.modules()]
    expected = {m.name for m in pkgutil.iter_modules(package.__path__) if not m.name.startswith("_")}
    assert set(imported) == expected and imported[0] == "definitions"
    registry.discover()
    assert all(f"mtneuro.features.{name}" in sys.modules for name in expected)
