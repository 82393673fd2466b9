"""The reporting pipeline through its catalog on hand-made task tables, and report.html opened in
headless Chromium at 1400 px: the three tables are there, no image is broken, no table is wider
than the page, the figures (training curves, confusion matrices) come before the tables and the
long calibration table is folded away."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner
from kedro.validation.type_extractor import TypeExtractor
from kedro_datasets.pandas import CSVDataset
from matplotlib.figure import Figure

from mtneuro.config import config_loader, load_parameters
from mtneuro.config.reporting import ReportingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.datasets.html_report import FigureDataset
from mtneuro.pipelines.reporting import create_pipeline
from mtneuro.pipelines.reporting.html import image_data_uris
from mtneuro.pipelines.reporting.pipeline import build_pipeline

TASK_TABLES = ("task1_region_classification", "task2_segmentation", "task3_probing")
#: Task 1's and Task 2's per-run outputs collected into one table each (read by the report's figures).
TASK1_RUN_TABLES = ("task1_confusion_matrices", "task1_training_histories", "task2_training_histories")
#: The figures the reporting pipeline draws itself.
DRAWN_HERE = {
    "phantom_vs_real_figure@png",
    "task1_confusion_matrices_figure@png",
    "task1_training_curves@png",
    "task2_training_curves@png",
}
REGIONS = ("CTX", "STR", "VP", "ZI")


def _task_tables() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    t1 = [
        {
            "source": "phantom",
            "method": m,
            "config": c,
            "seed": s,
            "accuracy": rng.uniform(0.4, 1.0),
            "balanced_accuracy": rng.uniform(0.4, 1.0),
        }
        for m in ("supervised", "byol", "pca")
        for c in ("ROI-C1", "ROI-C2", "ROI-C3")
        for s in range(2)
    ]
    t2 = [
        {
            "source": "phantom",
            "model": model,
            "dims": dims,
            "setting": setting,
            "seed": s,
            "class": cls,
            "f1": rng.uniform(0.3, 1.0),
            "iou": rng.uniform(0.2, 0.9),
        }
        for model, dims in (("unet", "2D"), ("unet3d", "3D"))
        for setting, classes in (
            ("3-class", ("background", "vessel", "cell")),
            ("4-class", ("background", "vessel", "cell", "axon")),
        )
        for s in range(2)
        for cls in classes
    ]
    t3 = [
        {
            "source": "phantom",
            "method": m,
            "train_config": c,
            "seed": s,
            "feature": f,
            "r2_in_sample": rng.uniform(0.0, 1.0),
            "r2_cv": rng.uniform(-0.2, 0.8),
        }
        for m in ("supervised", "byol", "pca")
        for c in ("ROI-C1", "ROI-C3")
        for s in range(2)
        for f in ("vessel_fraction", "axon_fraction", "cell_count", "mean_cell_area", "mean_nn_distance")
    ]
    pairs = (("ROI-C1", "ROI-C1"), ("ROI-C1", "ROI-C2"), ("ROI-C3", "ROI-C3"))
    confusion = [
        {
            "source": "phantom",
            "method": m,
            "train_config": train,
            "seed": s,
            "config": test,
            "true_region": region,
            **{f"pred_{p}": int(rng.integers(0, 10)) + (20 if p == region else 0) for p in REGIONS},
        }
        for m in ("supervised", "byol", "pca")
        for train, test in pairs
        for s in range(2)
        for region in REGIONS
    ]
    histories = [
        {
            "source": "phantom",
            "method": m,
            "train_config": c,
            "seed": s,
            "step_kind": "epoch",
            "step": e,
            "loss": 2.0 / (1 + e) + 0.1 * s,
            "lr": 0.05 * (1 - e / 4),
        }
        for m in ("supervised", "byol")
        for c in ("ROI-C1", "ROI-C3")
        for s in range(2)
        for e in range(4)
    ] + [
        {"source": "phantom", "method": "pca", "train_config": c, "seed": 0, "step_kind": "components", "step": k}
        | {"loss": 1.0 / k}
        for c in ("ROI-C1", "ROI-C3")
        for k in (1, 2, 4, 8)
    ]
    task2_histories = [
        {
            "source": "phantom",
            "method": model,
            "train_config": setting,
            "seed": s,
            "step_kind": "epoch",
            "step": e,
            "loss": 1.5 / (1 + e) + 0.05 * s,
            "seconds": 0.5,
            "lr": 0.003 * (1 - e / 3),
        }
        for model in ("unet", "unet3d")
        for setting in ("3-class", "4-class")
        for s in range(2)
        for e in range(3)
    ]
    return {
        "task1_region_classification": pd.DataFrame(t1),
        "task2_segmentation": pd.DataFrame(t2),
        "task3_probing": pd.DataFrame(t3),
        "task1_confusion_matrices": pd.DataFrame(confusion),
        "task1_training_histories": pd.DataFrame(histories),
        "task2_training_histories": pd.DataFrame(task2_histories),
    }


def _task_figure(title: str) -> Figure:
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.imshow(np.random.default_rng(1).integers(0, 255, (32, 32)), cmap="gray")
    ax.set_title(title)
    return fig


@pytest.fixture(scope="module")
def reporting_run(tmp_path_factory: pytest.TempPathFactory, project_path: Path) -> dict:
    """Runs the reporting pipeline with the project's catalog and tiny parameters into a temp folder."""
    data_root = tmp_path_factory.mktemp("reporting")
    loader = config_loader(project_path / "conf", "tiny", runtime_params={"data_root": str(data_root)})
    params = load_parameters(project_path / "conf", "tiny", runtime_params={"data_root": str(data_root)}).reporting
    catalog = DataCatalog.from_config(loader["catalog"], credentials=loader["credentials"])
    reporting_dir = data_root / "08_reporting"
    # the task tables and figures come from the task pipelines' catalogs; stand-ins where absent
    for name, frame in _task_tables().items():
        if name not in catalog:
            catalog[name] = CSVDataset(filepath=str(reporting_dir / f"{name}.csv"), save_args={"index": False})
        catalog.save(name, frame)
    figure_names, table_names = list(params.figures), list(params.tables)
    produced = {name.split("@")[0] for name in build_pipeline(figure_names, table_names).all_outputs()}
    for name in figure_names:  # stand-ins: the task pipelines' own figure datasets are checked below
        if name.split("@")[0] in produced:
            continue  # drawn by the reporting pipeline itself (the phantom beside the real data)
        catalog[name] = FigureDataset(filepath=str(reporting_dir / "task_figures" / f"{name}.png"))
        catalog.save(name, _task_figure(name))
    for name in set(table_names) - produced:  # stand-in: a further table as the mapping pipeline writes it
        catalog[name] = CSVDataset(filepath=str(reporting_dir / "further" / f"{name}.csv"))
        catalog.save(
            name,
            pd.DataFrame(
                {
                    "metric": ["region_accuracy", "region_voxels", "microstructure_iou_in_cube"],
                    "class": ["all", "all", "myow_merged.roi_c1.seed0"],
                    "value": [0.87654, 187611136.0, 0.5],
                    "source": ["phantom", "phantom", "task2_segmentation: unetplusplus, seg_4class, seed 0"],
                }
            ),
        )
    catalog["params:reporting"] = params
    tiny = load_parameters(project_path / "conf", "tiny")
    catalog["params:volume"] = tiny.volume
    for block in ("classification", "segmentation", "probing", "ingestion"):
        catalog[f"params:{block}"] = getattr(tiny, block)
    SequentialRunner().run(build_pipeline(figure_names, table_names), catalog)
    return {"dir": reporting_dir, "params": params, "figures": figure_names, "tables": table_names}


def test_pipeline_writes_tables_charts_and_report(reporting_run: dict) -> None:
    out: Path = reporting_run["dir"]
    md = (out / "paper_tables.md").read_text(encoding="utf-8")
    assert md.count("Data source: phantom") == 3
    assert md.count(f"Profile: {reporting_run['params'].profile}") == 3
    assert md.count("paper (real data)") >= 3 and md.count("ours (phantom)") >= 3
    assert md.index("Table 1") < md.index("Table 2") < md.index("Table 3")
    for stem in ("table1_region_classification", "table2_segmentation", "table3_probing"):
        table = pd.read_csv(out / f"{stem}.csv")
        assert {"source", "profile", "n_seeds", "ours_mean", "ours_std", "paper_mean", "paper_std"} <= set(table)
        assert table["ours_mean"].notna().any() and table["paper_mean"].notna().any()
        assert table.loc[table["n_seeds"] == 0, "ours_mean"].isna().all()  # missing, never 0
    for png in ("chart_task1_accuracy.png", "chart_task2_segmentation.png", "chart_task3_probing.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")
    assert Path(reporting_run["params"].report_path) == out / "report.html"  # what the console hook prints
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 + len(reporting_run["figures"])
    # further tables: under their caption, floats at the report's decimals
    assert set(reporting_run["tables"]) == {"phantom_vs_real", "mapping_validation", "profile_departures"}
    further = page[page.index('<section id="further">') : page.index("</body>")]
    for name in reporting_run["tables"]:
        assert reporting_run["params"].tables[name].replace("'", "&#x27;") in further
    # the phantom beside the real section: every statistic, for every region
    comparison = pd.read_csv(out / "phantom_vs_real.csv")
    assert {"statistic", "region", "phantom", "real", "relative_difference", "within_tolerance"} <= set(comparison)
    assert {"CTX", "STR", "VP", "ZI"} <= set(comparison["region"]) and len(comparison) > 40
    assert comparison["within_tolerance"].mean() > 0.6
    assert (out / "phantom_vs_real.png").read_bytes().startswith(b"\x89PNG")
    assert "<code>mapping_validation</code>" in further
    assert '<td class="label">region_accuracy</td>' in further and ">0.877</td>" in further
    assert ">187611136</td>" in further  # a count, not 187611136.000
    # the settings in which the profile departs from the paper, from the active (tiny) parameters
    assert md.startswith("# Settings: profile ") and "Task 1 training slices: every k-th" in md
    assert "| Task 1 seeds" in md and "| yes " in md
    assert "<code>profile_departures</code>" in further and "classification.data.train_slice_step" in further


def test_create_pipeline_inlines_the_configured_figures(project_path: Path) -> None:
    parameters = load_parameters(project_path / "conf", "tiny")
    pipe = create_pipeline(parameters)
    assert set(parameters.reporting.figures) - DRAWN_HERE <= pipe.inputs()
    settings = {"params:classification", "params:segmentation", "params:probing", "params:ingestion"}
    assert pipe.inputs() == {
        *TASK_TABLES,
        *TASK1_RUN_TABLES,
        *parameters.reporting.figures,
        *parameters.reporting.tables,
        "params:reporting",
        "params:volume",
        *settings,
    } - {"phantom_vs_real", "profile_departures", *DRAWN_HERE}
    assert {"report_html", "paper_tables_md", "task3_probing_chart"} <= pipe.all_outputs()
    assert all("reporting" in n.tags for n in pipe.nodes)
    # Kedro's parameter validation hands every node the typed block
    types = TypeExtractor({"reporting": pipe}).extract_types_from_pipelines()
    assert types["reporting"] is ReportingParameters and types["volume"] is VolumeParameters
    assert set(types) == {"reporting", "volume", "classification", "segmentation", "probing", "ingestion"}
    none = create_pipeline(
        parameters.model_copy(
            update={"reporting": parameters.reporting.model_copy(update={"figures": {}, "tables": {}})}
        )
    )
    assert none.inputs() == {*TASK_TABLES, *TASK1_RUN_TABLES, "params:reporting", "params:volume", *settings}


def test_task_figures_are_declared_and_loadable(tmp_path: Path, project_path: Path) -> None:
    """Each figure in ``reporting.figures`` is a catalog dataset that saves a Figure and loads it
    back (``matplotlib.MatplotlibDataset`` cannot load: use ``mtneuro.datasets.html_report.FigureDataset``)."""
    loader = config_loader(project_path / "conf", "tiny", runtime_params={"data_root": str(tmp_path)})
    catalog = DataCatalog.from_config(loader["catalog"], credentials=loader["credentials"])
    problems = []
    for name in load_parameters(project_path / "conf", "tiny").reporting.figures:
        if name not in catalog:
            problems.append(f"{name}: no catalog entry (reporting.figures names it; report.html needs it)")
            continue
        try:
            catalog.save(name, _task_figure(name))
            assert image_data_uris(catalog.load(name))
        except Exception as exc:
            problems.append(
                f"{name}: {type(exc).__name__}: {exc} -> declare it with "
                "type: mtneuro.datasets.html_report.FigureDataset (same filepath and save_args)"
            )
    assert not problems, "\n".join(problems)


def _browser_binaries() -> tuple[str, str]:
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip(
            "headless Chromium test needs the Debian packages chromium and chromium-driver "
            f"(found chromium={browser}, chromedriver={driver}); .ci/run installs them"
        )
    return browser, driver


@pytest.fixture(scope="module")
def report_page(reporting_run: dict):
    """report.html open in headless Chromium, 1400 px wide (one browser for the module's tests, ~2 s)."""
    browser, driver_path = _browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        driver.set_page_load_timeout(30)
        driver.get((reporting_run["dir"] / "report.html").resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def test_report_in_headless_chromium(report_page, reporting_run: dict) -> None:
    from selenium.webdriver.common.by import By

    driver = report_page
    assert "MTNeuro" in driver.title
    for section_id in ("table1", "table2", "table3"):
        section = driver.find_element(By.ID, section_id)
        tables = section.find_elements(By.CSS_SELECTOR, "table.results")
        assert tables, f"no table in #{section_id}"
        for table in tables:
            assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) >= 1
        assert "paper (real data)" in section.text and "ours (phantom)" in section.text
        assert "Data source: phantom" in section.text
    images = driver.find_elements(By.TAG_NAME, "img")
    assert len(images) == 3 + len(reporting_run["figures"])
    for image in images:
        ok = driver.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0 && arguments[0].naturalHeight > 0;",
            image,
        )
        assert ok, f"broken image: {image.get_attribute('alt')}"


_TOO_WIDE = """
const page = document.documentElement.clientWidth;
return [...document.querySelectorAll('table')].filter(t => t.offsetParent !== null).map(t => {
    const r = t.getBoundingClientRect();
    return [t.id, Math.round(r.left), Math.round(r.right), page];
}).filter(([id, left, right, page]) => left < 0 || right > page);
"""


def test_report_layout_at_1400_px(report_page) -> None:
    """What a reader sees first and that nothing is cut off: figures before the tables, training
    curves and confusion matrices loaded, one metric row per model (the others behind a toggle),
    every table (toggles on, folded tables open) within the page, the calibration table folded."""
    from selenium.webdriver.common.by import By

    driver = report_page
    width = driver.execute_script("return document.documentElement.clientWidth")
    assert 1300 <= width <= 1400
    # the pictures a reader expects, loaded and drawn from data (the "no data" stub is 110 px tall)
    curves = ("figure-task1_training_curves-png", "figure-task2_training_curves-png")
    for figure_id in (*curves, "figure-task1_confusion_matrices_figure-png"):
        image = driver.find_element(By.CSS_SELECTOR, f"#{figure_id} img")
        loaded = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0;", image)
        size = driver.execute_script("return [arguments[0].naturalWidth, arguments[0].naturalHeight];", image)
        assert loaded and size[0] > 300 and size[1] > 300, (figure_id, size)
        assert image.rect["x"] + image.rect["width"] <= width
    # Task 2's curves right after Task 1's, in the same figures section
    ids = [f.get_attribute("id") for f in driver.find_elements(By.CSS_SELECTOR, "#figures figure")]
    assert ids.index(curves[1]) == ids.index(curves[0]) + 1, ids
    legend = driver.find_element(By.ID, "figure-mapping_overview-png-legend-regions")
    assert "CTX (cortex)" in legend.text and "ZI (zona incerta)" in legend.text
    assert len(legend.find_elements(By.CSS_SELECTOR, ".swatch")) == 4
    # order: summary, then every figure, then the first table
    first_table = driver.find_element(By.CSS_SELECTOR, "table.results")
    assert first_table.get_attribute("id") == "table1-1"
    figures = driver.find_elements(By.CSS_SELECTOR, "#figures figure")
    assert len(figures) >= 5
    follows = "return Boolean(arguments[0].compareDocumentPosition(arguments[1]) & Node.DOCUMENT_POSITION_FOLLOWING);"
    assert driver.execute_script(follows, driver.find_element(By.ID, "summary"), figures[0])
    assert all(driver.execute_script(follows, f, first_table) for f in figures)
    # one metric row per model; the others appear with the toggle
    block = driver.find_element(By.ID, "table2-4")  # 3D, 4-class
    rows = block.find_elements(By.CSS_SELECTOR, "tbody tr")
    shown = [r for r in rows if r.is_displayed()]
    assert [r.find_elements(By.TAG_NAME, "td")[0].text for r in shown] == ["3D U-Net", "VNetLight", "HighResNet"]
    assert {r.find_elements(By.TAG_NAME, "td")[1].text for r in shown} == {"F1"} and len(rows) == 4 * len(shown)
    assert "unet3d" not in driver.find_element(By.TAG_NAME, "body").text
    assert driver.find_elements(By.CSS_SELECTOR, "#table1 input.all-rows") == []  # Table 1: one metric already
    # the calibration table is folded away, and the brain map's numbers read as a person would
    calibration = driver.find_element(By.ID, "table-phantom_vs_real")
    assert calibration.find_element(By.XPATH, "ancestor::details") and not calibration.is_displayed()
    assert not driver.find_elements(By.XPATH, "//table[@id='table-mapping_validation']/ancestor::details")
    mapping = driver.find_element(By.ID, "table-mapping_validation").text
    assert "187611136" in mapping and "187611136.000" not in mapping and "0.877" in mapping
    assert "MYOW-m, ROI-C1, seed 0" in mapping and "U-Net++, 4-class, seed 0" in mapping
    assert driver.execute_script(_TOO_WIDE) == []
    # everything open: every toggle ticked, every folded table shown
    for label in driver.find_elements(By.CSS_SELECTOR, "label.all-rows"):
        driver.execute_script("arguments[0].scrollIntoView();", label)
        label.click()
    for details in driver.find_elements(By.TAG_NAME, "details"):
        driver.execute_script("arguments[0].open = true;", details)
    assert all(r.is_displayed() for r in rows)
    assert calibration.is_displayed()
    assert driver.execute_script(_TOO_WIDE) == []
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width
    # the last column group (Table 2's Avg., Table 3's last feature) inside the page
    for table_id, last in (("table2-2", "Avg."), ("table2-4", "Avg."), ("table3-1", "Dist (k=1, 3D labels)")):
        header = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} th.group")[-1]
        assert header.text == last and header.rect["x"] + header.rect["width"] <= width, table_id
