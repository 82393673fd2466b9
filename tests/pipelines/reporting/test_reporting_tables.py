"""Reporting table builders on hand-made task tables: statistics over seeds, the paper's columns,
missing runs shown as missing (never as zero), and the source/profile statement."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mtneuro import paper_results as paper
from mtneuro.config.reporting import ReportingParameters
from mtneuro.datasets.html_report import FigureDataset
from mtneuro.pipelines.reporting import formatting, html, nodes
from mtneuro.pipelines.reporting.labels import MISSING

PARAMS = ReportingParameters(
    profile="unit-test profile",
    report_path="data/08_reporting/report.html",
    task1_metric="accuracy",
    decimals=3,
    figures={},
    tables={},
)


def _row(table: pd.DataFrame, **where: object) -> pd.Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in where.items():
        mask &= (table[column] == value).to_numpy()
    part = table[mask]
    assert len(part) == 1, (where, part)
    return part.iloc[0]


# --- Table 1 ---------------------------------------------------------------------------------


@pytest.fixture
def task1_runs() -> pd.DataFrame:
    acc = {  # (method, config) -> accuracies of seeds 0, 1, 2
        ("supervised", "ROI-C1"): [0.5, 0.6, 0.7],
        ("byol", "ROI-C1"): [0.8, 0.9],  # a seed missing
        ("pca", "ROI-C2"): [0.25],
    }
    rows = [
        {"source": "phantom", "method": m, "config": c, "seed": s, "accuracy": a, "balanced_accuracy": a - 0.1}
        for (m, c), values in acc.items()
        for s, a in enumerate(values)
    ]
    # a failed run (NaN metric) must count as missing, not as a value
    rows.append(
        {
            "source": "phantom",
            "method": "nmf",
            "config": "ROI-C3",
            "seed": 0,
            "accuracy": float("nan"),
            "balanced_accuracy": float("nan"),
        }
    )
    return pd.DataFrame(rows)


def test_table1_mean_std_over_seeds_and_paper(task1_runs: pd.DataFrame) -> None:
    table = nodes.build_table1(task1_runs, PARAMS)
    # every paper method x configuration is present
    assert set(zip(table["method"], table["config"], strict=True)) >= {
        (m, c) for m in paper.TABLE1_METHODS for c in paper.TABLE1_CONFIGS
    }
    sup = _row(table, method="supervised", config="ROI-C1")
    assert sup.n_seeds == 3
    assert sup.ours_mean == pytest.approx(0.6)
    assert sup.ours_std == pytest.approx(np.std([0.5, 0.6, 0.7], ddof=1))
    assert (sup.paper_mean, sup.paper_std) == (0.88, 0.03)
    assert (sup.source, sup.profile) == ("phantom", "unit-test profile")

    byol = _row(table, method="byol", config="ROI-C1")
    assert byol.n_seeds == 2 and byol.ours_mean == pytest.approx(0.85)

    pca = _row(table, method="pca", config="ROI-C2")
    assert pca.n_seeds == 1 and pca.ours_mean == pytest.approx(0.25) and math.isnan(pca.ours_std)
    assert pca.paper_mean == 0.25 and math.isnan(pca.paper_std)  # the paper prints no std for PCA


def test_table1_missing_runs_are_missing_not_zero(task1_runs: pd.DataFrame) -> None:
    table = nodes.build_table1(task1_runs, PARAMS)
    for method, config in [("mixup", "ROI-C2"), ("nmf", "ROI-C3"), ("supervised", "ROI-C3")]:
        row = _row(table, method=method, config=config)
        assert row.n_seeds == 0
        assert math.isnan(row.ours_mean) and math.isnan(row.ours_std)
    md = nodes.table1_markdown(table, PARAMS)
    mixup_line = next(line for line in md.splitlines() if line.startswith("| Sup w/ Mixup"))
    cells = [c.strip() for c in mixup_line.strip("|").split("|")]
    # Method, then (ours, paper) per configuration: ours all missing, paper all present
    assert cells[1::2] == [MISSING] * 3
    assert cells[2::2] == ["0.90 ± 0.04", "0.78 ± 0.03", "0.90 ± 0.02"]
    assert "0.000" not in md
    # partial runs are flagged with their seed count
    byol_line = next(line for line in md.splitlines() if line.startswith("| BYOL"))
    assert "0.850 (0.800–0.900; n=2)" in byol_line  # two seeds: their range, not a std


def test_table1_states_source_profile_and_labels(task1_runs: pd.DataFrame) -> None:
    md = nodes.table1_markdown(nodes.build_table1(task1_runs, PARAMS), PARAMS)
    assert "Data source: phantom" in md and "NOT results on the real MTNeuro dataset" in md
    assert "Profile: unit-test profile" in md
    assert "ROI-C1 · ours (phantom)" in md and "ROI-C1 · paper (real data)" in md


def test_table1_labels_come_from_the_method_registry(task1_runs: pd.DataFrame) -> None:
    from mtneuro.classification_methods import get_method

    table = nodes.build_table1(task1_runs, PARAMS)
    for method in ("supervised", "byol", "pca", "nmf"):
        assert set(table.loc[table["method"] == method, "method_label"]) == {get_method(method).label}
    # a name no registry knows is kept as it is, after the paper's methods
    other = task1_runs.assign(method="my_method")
    table = nodes.build_table1(other, PARAMS)
    assert table["method"].drop_duplicates().tolist()[-1] == "my_method"
    assert set(table.loc[table["method"] == "my_method", "method_label"]) == {"my_method"}


def test_table1_balanced_accuracy_has_no_paper_column(task1_runs: pd.DataFrame) -> None:
    params = PARAMS.model_copy(update={"task1_metric": "balanced_accuracy"})
    table = nodes.build_table1(task1_runs, params)
    assert set(table["metric"]) == {"balanced_accuracy"} and table["paper_mean"].isna().all()
    assert _row(table, method="supervised", config="ROI-C1").ours_mean == pytest.approx(0.5)


def test_table1_csv_round_trip_renders_the_same(tmp_path, task1_runs: pd.DataFrame) -> None:
    table = nodes.build_table1(task1_runs, PARAMS)
    path = tmp_path / "t1.csv"
    table.to_csv(path, index=False)
    again = pd.read_csv(path)
    assert nodes.table1_markdown(again, PARAMS) == nodes.table1_markdown(table, PARAMS)
    # missing values are empty cells in the CSV, never 0
    raw = path.read_text().splitlines()
    mixup = next(line for line in raw if ",mixup,Sup w/ Mixup,ROI-C1," in line)
    assert mixup.split(",")[6:9] == ["0", "", ""]  # n_seeds, ours_mean, ours_std


def test_empty_task_tables_give_all_missing_tables() -> None:
    for build, md in [
        (nodes.build_table1, nodes.table1_markdown),
        (nodes.build_table2, nodes.table2_markdown),
        (nodes.build_table3, nodes.table3_markdown),
    ]:
        table = build(pd.DataFrame(), PARAMS)
        assert len(table) > 0
        assert table["ours_mean"].isna().all() and (table["n_seeds"] == 0).all()
        assert table["paper_mean"].notna().any()
        assert "Data source: unknown" in md(table, PARAMS)


# --- Table 2 ---------------------------------------------------------------------------------


def _seg_rows(
    model: str, dims: str, setting: str, classes: dict[str, list[float]], with_mean: bool = False
) -> list[dict]:
    rows = []
    for cls, values in classes.items():
        for seed, v in enumerate(values):
            rows.append(
                {
                    "source": "phantom",
                    "model": model,
                    "dims": dims,
                    "setting": setting,
                    "seed": seed,
                    "class": cls,
                    "f1": v,
                    "iou": v / 2,
                    "iou_per_image": v / 4,
                    "iou_authors": v / 5,
                }
            )
    if with_mean:
        n_seeds = len(next(iter(classes.values())))
        for seed in range(n_seeds):
            rows.append(
                {
                    "source": "phantom",
                    "model": model,
                    "dims": dims,
                    "setting": setting,
                    "seed": seed,
                    "class": "mean",
                    "f1": 0.5,
                    "iou": 0.25,
                    "iou_per_image": 0.2,
                    "iou_authors": 0.15,
                }
            )
    return rows


@pytest.fixture
def task2_runs() -> pd.DataFrame:
    rows = _seg_rows("unet", "2D", "3-class", {"background": [0.9, 1.0], "vessel": [0.6, 0.8], "cell": [0.3, 0.6]})
    rows += _seg_rows(
        "manet", "2D", "4-class", {"background": [0.9], "vessel": [0.7], "cell": [0.8], "axon": [0.6]}, with_mean=True
    )
    rows += _seg_rows("unet3d", "3D", "3-class", {"background": [0.9, 0.9], "vessel": [0.5, 0.7], "cell": [0.4, 0.5]})
    return pd.DataFrame(rows)


def test_table2_per_class_mean_and_class_average(task2_runs: pd.DataFrame) -> None:
    table = nodes.build_table2(task2_runs, PARAMS)
    vessel = _row(table, dims="2D", model="unet", setting="3-class", metric="f1", **{"class": "vessel"})
    assert vessel.n_seeds == 2 and vessel.ours_mean == pytest.approx(0.7)
    assert vessel.ours_std == pytest.approx(np.std([0.6, 0.8], ddof=1))
    assert vessel.paper_mean == 0.76 and math.isnan(vessel.paper_std)
    # no mean row in the runs: mean over classes per seed, then mean/std over seeds
    mean = _row(table, dims="2D", model="unet", setting="3-class", metric="f1", **{"class": "mean"})
    per_seed = [np.mean([0.9, 0.6, 0.3]), np.mean([1.0, 0.8, 0.6])]
    assert mean.ours_mean == pytest.approx(np.mean(per_seed))
    assert mean.ours_std == pytest.approx(np.std(per_seed, ddof=1))
    assert (mean.paper_mean, mean.paper_std) == (0.87, 0.012)
    # pooled and present-only per-slice IoU: no paper value; the authors' per-sample IoU: the paper's IoU
    iou = _row(table, dims="2D", model="unet", setting="3-class", metric="iou", **{"class": "mean"})
    assert iou.ours_mean == pytest.approx(np.mean(per_seed) / 2) and math.isnan(iou.paper_mean)
    assert math.isnan(iou.paper_std)
    iou_img = _row(table, dims="2D", model="unet", setting="3-class", metric="iou_per_image", **{"class": "mean"})
    assert iou_img.ours_mean == pytest.approx(np.mean(per_seed) / 4)
    assert iou_img.ours_std == pytest.approx(np.std(per_seed, ddof=1) / 4)
    assert math.isnan(iou_img.paper_mean)
    authors = _row(table, dims="2D", model="unet", setting="3-class", metric="iou_authors", **{"class": "mean"})
    assert authors.ours_mean == pytest.approx(np.mean(per_seed) / 5)
    assert (authors.paper_mean, authors.paper_std) == (0.79, 0.014)
    cell = _row(table, dims="2D", model="unet", setting="3-class", metric="iou_authors", **{"class": "cell"})
    assert cell.ours_mean == pytest.approx(0.45 / 5) and cell.paper_mean == 0.75
    assert table["metric"].drop_duplicates().tolist() == ["f1", "iou", "iou_per_image", "iou_authors"]
    # a mean row given by the runs is used as it is
    given = _row(table, dims="2D", model="manet", setting="4-class", metric="f1", **{"class": "mean"})
    assert given.ours_mean == pytest.approx(0.5) and given.paper_mean == 0.90
    given = _row(table, dims="2D", model="manet", setting="4-class", metric="iou_authors", **{"class": "mean"})
    assert given.ours_mean == pytest.approx(0.15) and given.paper_mean == 0.78
    # the 3D U-Net is looked up as the paper's 3D U-Net, not the 2D one
    unet3d = _row(table, dims="3D", model="unet3d", setting="3-class", metric="f1", **{"class": "vessel"})
    assert unet3d.ours_mean == pytest.approx(0.6) and unet3d.paper_mean == 0.77


def test_table2_missing_and_labels(task2_runs: pd.DataFrame) -> None:
    table = nodes.build_table2(task2_runs, PARAMS)
    missing = _row(table, dims="2D", model="unet", setting="4-class", metric="iou_authors", **{"class": "axon"})
    assert missing.n_seeds == 0 and math.isnan(missing.ours_mean) and missing.paper_mean == 0.60
    # every paper model appears in both settings
    for dims, models in paper.TABLE2_MODELS.items():
        for model in models:
            for setting in paper.TABLE2_SETTINGS:
                assert len(table[(table["dims"] == dims) & (table["model"] == model) & (table["setting"] == setting)])
    md = nodes.table2_markdown(table, PARAMS)
    for heading in (
        "## 2D segmentation, 3-class",
        "## 2D segmentation, 4-class",
        "## 3D segmentation, 3-class",
        "## 3D segmentation, 4-class",
    ):
        assert heading in md
    assert "Bg + Axons · ours (phantom)" in md and "Avg. · paper (real data)" in md
    pan = next(line for line in md.splitlines() if line.startswith("| PAN ") and "| F1 " in line)
    assert MISSING in pan and "0.79 ± 0.035" in pan


def _md_cells(md: str, start: str, metric_label: str) -> list[str]:
    """The cells of the Markdown row of the first block whose line starts with ``start`` and whose
    Metric cell is ``metric_label``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith(start) and len(cells) > 1 and cells[1] == metric_label:
            return cells
    raise AssertionError(f"no row {start!r} / {metric_label!r} in\n{md}")


def test_table2_shows_pooled_per_image_and_authors_iou_each_labelled(task2_runs: pd.DataFrame) -> None:
    table = nodes.build_table2(task2_runs, PARAMS)
    md = nodes.table2_markdown(table, PARAMS)
    f1_label, pooled_label, per_image_label, authors_label = (
        "F1 (pooled, as the authors' code)",
        "IoU (pooled)",
        "IoU (per slice, present classes only)",
        "IoU (per sample, absent = 1, as the authors' code)",
    )
    block = md.split("## 2D segmentation, 3-class")[1].split("## ")[0]
    unet_lines = [line for line in block.splitlines() if line.startswith("| 2D U-Net ")]
    assert [[c.strip() for c in line.strip("|").split("|")][1] for line in unet_lines] == [
        f1_label,
        pooled_label,
        per_image_label,
        authors_label,
    ]
    # columns: Model, Metric, then (ours, paper) for Bg + Axons, Vessels, Cells, Avg.
    f1 = _md_cells(block, "| 2D U-Net ", f1_label)
    assert f1[3::2] == ["0.99", "0.76", "0.85", "0.87 ± 0.012"]  # the paper's (pooled) F1
    pooled = _md_cells(block, "| 2D U-Net ", pooled_label)
    assert pooled[8] == "0.350 (0.300–0.400)" and pooled[3::2] == [MISSING] * 4  # no paper value of this definition
    per_image = _md_cells(block, "| 2D U-Net ", per_image_label)
    assert per_image[8] == "0.175 (0.150–0.200)" and per_image[3::2] == [MISSING] * 4
    assert per_image[2] == "0.237 (0.225–0.250)"  # background: (0.9 + 1.0) / 2 / 4
    authors = _md_cells(block, "| 2D U-Net ", authors_label)
    assert authors[3::2] == ["0.98", "0.64", "0.75", "0.79 ± 0.014"]
    # the caption says which is which and which one the paper's IoU is compared with
    caption = "\n".join(line for line in md.splitlines() if line.startswith("- "))
    assert f"its IoU beside {authors_label}" in caption
    assert f"{pooled_label} and {per_image_label} have no paper value" in caption
    assert "averaged over the slices" in caption and "summed over every test pixel" in caption
    assert "zero_division=1.0" in caption
    assert "IoU pooled, per slice and as the authors" in md.splitlines()[0]


def test_table2_from_an_older_task_table_without_iou_authors(task2_runs: pd.DataFrame) -> None:
    label = "IoU (per sample, absent = 1, as the authors' code)"
    table = nodes.build_table2(task2_runs.drop(columns=["iou_authors"]), PARAMS)
    rows = table[table["metric"] == "iou_authors"]
    assert len(rows) and (rows["n_seeds"] == 0).all() and rows["ours_mean"].isna().all()
    assert rows["paper_mean"].notna().any()  # the paper's IoU is still shown
    pooled = _row(table, dims="2D", model="unet", setting="3-class", metric="iou", **{"class": "mean"})
    assert pooled.ours_mean == pytest.approx(0.35)
    md = nodes.table2_markdown(table, PARAMS)
    authors = _md_cells(md, "| 2D U-Net ", label)
    assert authors[2::2] == [MISSING] * 4 and authors[9] == "0.79 ± 0.014"
    # a Table 2 written before the authors' rows existed still renders every metric row, "—" where none
    older = table[table["metric"] != "iou_authors"]
    authors = _md_cells(nodes.table2_markdown(older, PARAMS), "| 2D U-Net ", label)
    assert authors[2:] == [MISSING] * 8


def test_table2_labels_and_dims_come_from_the_model_registry(task2_runs: pd.DataFrame) -> None:
    from mtneuro.segmentation_models import get_model

    # the task table's dims (2/3 as the segmentation pipeline writes them), or the registry's
    written = task2_runs.assign(dims=task2_runs["dims"].str[0].astype(int))
    for runs in (written, task2_runs.drop(columns=["dims"])):
        table = nodes.build_table2(runs, PARAMS)
        row = _row(table, dims="3D", model="unet3d", setting="3-class", metric="f1", **{"class": "vessel"})
        assert row.ours_mean == pytest.approx(0.6) and row.model_label == get_model("unet3d").label
        assert (
            _row(table, dims="2D", model="manet", setting="4-class", metric="f1", **{"class": "mean"}).ours_mean == 0.5
        )
    assert set(table.loc[table["model"] == "unet", "model_label"]) == {get_model("unet").label}


# --- Table 3 ---------------------------------------------------------------------------------


@pytest.fixture
def task3_runs() -> pd.DataFrame:
    rows = []
    for seed, (r2, cv) in enumerate([(0.8, 0.7), (0.9, 0.6)]):
        for feature in paper.TABLE3_FEATURES:
            rows.append(
                {
                    "source": "bossdb",
                    "method": "myow_merged",
                    "train_config": "ROI-C1",
                    "seed": seed,
                    "feature": feature,
                    "r2_in_sample": r2,
                    "r2_cv": cv,
                }
            )
    for feature, r2 in (("cell_count_authors", 0.5), ("cell_count", 0.4)):
        rows.append(
            {
                "source": "bossdb",
                "method": "pca",
                "train_config": "ROI-C3",
                "seed": 0,
                "feature": feature,
                "r2_in_sample": r2,
                "r2_in_sample_noise": 0.18,
                "r2_cv": -0.2,
            }
        )
    return pd.DataFrame(rows)


def test_table3_in_sample_and_cv(task3_runs: pd.DataFrame) -> None:
    table = nodes.build_table3(task3_runs, PARAMS)
    ins = _row(table, train_config="ROI-C1", method="myow_merged", feature="vessel_fraction", r2="in_sample")
    assert ins.n_seeds == 2 and ins.ours_mean == pytest.approx(0.85)
    assert ins.ours_std == pytest.approx(np.std([0.8, 0.9], ddof=1))
    assert (ins.paper_mean, ins.paper_std) == (0.87, 0.01)
    cv = _row(table, train_config="ROI-C1", method="myow_merged", feature="vessel_fraction", r2="cv")
    assert cv.ours_mean == pytest.approx(0.65) and math.isnan(cv.paper_mean)  # paper reports no CV R²
    neg = _row(table, train_config="ROI-C3", method="pca", feature="cell_count_authors", r2="cv")
    assert neg.ours_mean == pytest.approx(-0.2)  # negative R² kept as it is
    # the paper's cell count sits beside the authors' 3D labelling, not beside this project's cells
    authors = _row(table, train_config="ROI-C3", method="pca", feature="cell_count_authors", r2="in_sample")
    assert authors.ours_mean == pytest.approx(0.5) and authors.paper_mean == 0.53
    own = _row(table, train_config="ROI-C3", method="pca", feature="cell_count", r2="in_sample")
    assert own.ours_mean == pytest.approx(0.4) and math.isnan(own.paper_mean)
    floor = _row(table, train_config="ROI-C3", method="pca", feature="cell_count", r2="in_sample_noise")
    assert floor.ours_mean == pytest.approx(0.18) and math.isnan(floor.paper_mean)
    features = list(dict.fromkeys(table["feature"]))
    assert features[:5] == [
        "vessel_fraction",
        "axon_fraction",
        "cell_count_authors",
        "mean_cell_area_authors",
        "mean_nn_distance_authors",
    ]
    assert set(features[5:]) == {"cell_count", "mean_cell_area", "mean_nn_distance"}
    missing = _row(table, train_config="ROI-C3", method="byol", feature="axon_fraction", r2="in_sample")
    assert missing.n_seeds == 0 and math.isnan(missing.ours_mean) and missing.paper_mean == 0.96
    md = nodes.table3_markdown(table, PARAMS)
    assert "Data source: bossdb" in md and "Vessels · ours (bossdb)" in md
    assert "Dist (k=1, 3D labels) · paper (real data)" in md and "| in-sample noise floor" in md
    assert "annots/latents.py, lines 29-31" in md and "sentinel 64" in md
    assert "## Linear read-outs from encoders trained on ROI-C1" in md and "ROI-C3" in md


def test_table3_labels_come_from_the_feature_registry(task3_runs: pd.DataFrame) -> None:
    from mtneuro.features import get_feature

    table = nodes.build_table3(task3_runs, PARAMS)
    for feature in paper.TABLE3_FEATURES:
        assert set(table.loc[table["feature"] == feature, "feature_label"]) == {get_feature(feature).label}


# --- formatting, charts, figure dataset -----------------------------------------------------


def test_formatting() -> None:
    assert formatting.format_ours(float("nan"), float("nan"), 0, 5, 3) == MISSING
    assert formatting.format_ours(0.0, 0.0, 3, 3, 3) == "0.000 ± 0.000"  # a real zero stays a zero
    assert formatting.format_ours(0.0, 0.0, 3, 3, 3, 0.0, 0.0) == "0.000 (3 seeds, identical)"
    assert formatting.format_ours(0.5, float("nan"), 1, 1, 3) == "0.500 (n=1)"
    assert formatting.format_ours(0.81234, 0.02, 2, 3, 2) == "0.81 ± 0.02 (n=2)"  # an older table: no range
    # up to three seeds: the range; identical seeds (deterministic methods): the value once, no ± 0.000
    assert formatting.format_ours(0.7825, 0.08, 2, 2, 3, 0.725, 0.84) == "0.782 (0.725–0.840)"
    assert formatting.format_ours(0.59, 0.0, 2, 2, 3, 0.59, 0.59) == "0.590 (2 seeds, identical)"
    assert formatting.format_ours(0.8, 0.05, 5, 5, 2, 0.7, 0.9) == "0.80 ± 0.05"  # five seeds: the std
    assert formatting.format_ours(0.8, 0.05, 2, 2, 3, 0.75, 0.85, 0.061) == "0.800 (0.750–0.850; CI ±0.061)"
    assert formatting.format_paper(0.85, 0.01) == "0.85 ± 0.01"
    assert formatting.format_paper(0.87, 0.012) == "0.87 ± 0.012"
    assert formatting.format_paper(0.07, float("nan")) == "0.07"
    assert formatting.format_paper(float("nan"), float("nan")) == MISSING


def test_decimals_parameter_reaches_the_markdown(task1_runs: pd.DataFrame) -> None:
    table = nodes.build_table1(task1_runs, PARAMS)
    two = nodes.table1_markdown(table, PARAMS.model_copy(update={"decimals": 2}))
    assert "0.85 (0.80–0.90; n=2)" in two and "0.850 (0.800–0.900; n=2)" in nodes.table1_markdown(table, PARAMS)


def test_charts_and_html_from_tables(tmp_path, task1_runs, task2_runs, task3_runs) -> None:
    t1 = nodes.build_table1(task1_runs, PARAMS)
    t2 = nodes.build_table2(task2_runs, PARAMS)
    t3 = nodes.build_table3(task3_runs, PARAMS)
    charts = []
    for k, fig in enumerate([nodes.task1_chart(t1), nodes.task2_chart(t2), nodes.task3_chart(t3)]):
        ds = FigureDataset(filepath=str(tmp_path / f"chart{k}.png"))
        ds.save(fig)
        assert ds.exists()
        charts.append(ds.load())
        assert charts[-1].startswith(b"\x89PNG")
    params = PARAMS.model_copy(update={"figures": {"extra": "An extra figure"}})
    page = nodes.build_html_report(t1, t2, t3, *charts, params, charts[0], figure_names=("extra",))
    for section in ('id="table1"', 'id="table2"', 'id="table3"', 'id="figures"'):
        assert section in page
    assert page.count("data:image/png;base64,") == 4
    assert "An extra figure" in page and "paper (real data)" in page and "unit-test profile" in page
    assert "http://" not in page and "https://" not in page  # self-contained
    with pytest.raises(nodes.ReportingError, match="figure"):
        nodes.build_html_report(t1, t2, t3, *charts, params, figure_names=("extra",))


def test_html_escapes_every_value(task1_runs) -> None:
    runs = task1_runs.assign(source="<b>x</b> & 'y'")
    params = PARAMS.model_copy(update={"profile": 'a "quoted" <profile>'})
    t1 = nodes.build_table1(runs, params)
    t2, t3 = nodes.build_table2(pd.DataFrame(), params), nodes.build_table3(pd.DataFrame(), params)
    page = html.render_report(t1, t2, t3, (None, None, None), {"fig": None}, {"fig": "<caption>"}, 3)
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt; &amp; &#x27;y&#x27;" in page
    assert "a &quot;quoted&quot; &lt;profile&gt;" in page and "&lt;caption&gt;" in page
    assert page.count("(no figure)") == 4  # no chart and no task figure: stated, not a broken image


def test_html_embeds_pil_images_and_arrays(task1_runs) -> None:
    from PIL import Image

    uris = html.image_data_uris({"a": Image.new("RGB", (4, 4)), "b": np.zeros((4, 4), dtype=np.uint8)})
    assert len(uris) == 2 and all(u.startswith("data:image/png;base64,") for u in uris)
    with pytest.raises(nodes.ReportingError):
        html.image_data_uris(b"not an image")


def test_table1_uses_the_papers_training_set_per_configuration(task1_runs: pd.DataFrame) -> None:
    runs = task1_runs.assign(
        train_config=task1_runs["config"].map({"ROI-C1": "ROI-C1", "ROI-C2": "ROI-C1", "ROI-C3": "ROI-C3"})
    )
    other = runs[runs["config"] == "ROI-C1"].assign(train_config="ROI-C3", accuracy=0.0)  # a C3 model on C1's test
    table = nodes.build_table1(pd.concat([runs, other], ignore_index=True), PARAMS)
    sup = _row(table, method="supervised", config="ROI-C1")
    assert sup.n_seeds == 3 and sup.ours_mean == pytest.approx(0.6)
