"""Task 2 wiring: one node per (model, setting, seed) of the typed grid, names and datasets as before."""

from __future__ import annotations

from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from mtneuro.config.segmentation import SegmentationParameters
from mtneuro.config.training import TrainingParameters
from mtneuro.pipelines.segmentation import create_pipeline
from mtneuro.settings import CONFIG_LOADER_ARGS


def test_pipeline_has_one_node_per_run_and_catalog_patterns_resolve(project_path, tiny_with):
    parameters = tiny_with(models=["unet", "vnet"], seeds=[0, 3], figure={"models": ["vnet"], "seed": 3})
    pipeline = create_pipeline(parameters)
    runs = [n for n in pipeline.nodes if n.name.endswith(".train_and_evaluate")]
    assert sorted(n.name for n in runs) == sorted(
        f"segmentation.{m}.{s}.seed{k}.train_and_evaluate"
        for m in ("unet", "vnet")
        for s in ("seg_3class", "seg_4class")
        for k in (0, 3)
    )
    assert {n.name for n in pipeline.nodes} - {n.name for n in runs} == {
        "segmentation.prepare_data",
        "segmentation.collect_results",
        "segmentation.collect_training_histories",
        "segmentation.index_runs",
        "segmentation.plot_overlays",
    }
    assert pipeline.inputs() == {"cubes", "split_index", "params:segmentation", "params:training"}
    assert {"task2_segmentation", "task2_training_histories", "task2_segmentation_overlays@matplotlib"} <= (
        pipeline.outputs()
    )
    assert "segmentation_runs" in pipeline.all_outputs()
    run = next(n for n in runs if n.name == "segmentation.unet.seg_4class.seed3.train_and_evaluate")
    assert run.inputs == ["segmentation_data", "params:segmentation", "params:training"]
    assert run.outputs == [
        f"segmentation.unet.seg_4class.seed3.{o}"
        for o in ("trained_model@model", "test_predictions@model", "metrics", "training_history")
    ]
    histories = next(n for n in pipeline.nodes if n.name == "segmentation.collect_training_histories")
    assert len(histories.inputs) == 8 and all(i.endswith(".training_history") for i in histories.inputs)
    # the figure reads its runs' predictions from the run index, which references every run
    figure = next(n for n in pipeline.nodes if n.name == "segmentation.plot_overlays")
    assert figure.inputs == ["segmentation_data", "params:segmentation", "segmentation_runs"]
    index = next(n for n in pipeline.nodes if n.name == "segmentation.index_runs")
    assert len(index.inputs) == 8 * 2 and all(i.endswith("@reference") for i in index.inputs)

    conf = OmegaConfigLoader(conf_source=str(project_path / "conf"), **CONFIG_LOADER_ARGS)
    catalog = DataCatalog.from_config(conf["catalog"], credentials=conf["credentials"])
    model_ds = catalog.get("segmentation.unet.seg_3class.seed3.trained_model@model")
    assert type(model_ds).__name__ == "TorchModelDataset"
    assert "06_models/segmentation/unet/seg_3class/seed3/model.pt" in str(model_ds._describe()["filepath"])
    preds_ds = catalog.get("segmentation.vnet.seg_4class.seed0.test_predictions@model")
    assert type(preds_ds).__name__ == "PredictionsDataset" and preds_ds._version is not None
    history_ds = catalog.get("segmentation.unet.seg_4class.seed0.training_history")
    assert type(history_ds).__name__ == "JSONDataset"
    assert "07_model_output/segmentation/unet/seg_4class/seed0/training_history.json" in str(
        history_ds._describe()["filepath"]
    )
    assert "08_reporting/task2_training_histories.csv" in str(catalog.get("task2_training_histories")._filepath)
    assert preds_ds._describe()["setting"] == "seg_4class"
    reference = catalog.get("segmentation.vnet.seg_4class.seed0.test_predictions@reference")
    assert type(reference).__name__ == "ArtifactReferenceDataset"
    assert reference._describe()["filepath"] == preds_ds._describe()["filepath"].as_posix()
    assert type(catalog.get("segmentation_runs")).__name__ == "RunIndexDataset"
    assert type(catalog.get("task2_segmentation")).__name__ == "CSVDataset"
    assert type(catalog.get("task2_segmentation_overlays@matplotlib")).__name__ == "MatplotlibDataset"


def test_nodes_declare_the_typed_blocks_kedro_validates(tiny_parameters):
    """Kedro's parameter validation reads the node functions' annotations (bound runs included)."""
    from kedro.validation.type_extractor import TypeExtractor

    found = TypeExtractor({"segmentation": create_pipeline(tiny_parameters)}).extract_types_from_pipelines()
    assert found == {"segmentation": SegmentationParameters, "training": TrainingParameters}
