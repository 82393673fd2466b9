"""Mapping pipeline wiring (namespace ``mapping``).

* ``choose_microstructure_model``: the Task 2 network (``mapping.microstructure``: a named model,
  or the best candidate by mean IoU in ``task2_segmentation``) from ``segmentation_runs``, and
  its Task 2 test predictions;
* ``mapping.regions.model: section`` (:mod:`.section`): ``sample_section_patches`` ->
  ``region_section_patches`` (image + roi_labels patches at slices held out from the window) and
  ``train_section_region_model``: a region network trained on them, and its selection record;
* otherwise ``choose_region_model``: the Task 1 encoder and read-out (``mapping.regions``: a
  named run, or the best candidate by validation accuracy on ``cubes`` / ``split_index``) from
  ``frozen_encoders``, and the record of that choice;
* ``plan_brain_map`` -> ``brain_map`` (the OME-Zarr store, written block by block by its dataset);
* ``compare_with_task2``: the map path on the main cubes' test slices against the Task 2 test
  predictions of the same network;
* ``validate_brain_map`` -> ``mapping_validation`` (region accuracy and smoothness, labels outside
  the tissue, microstructure IoU far from the training cubes, the model choice, the agreement);
* ``plot_brain_map`` -> ``mapping_overview@matplotlib``.

The models come from the tasks' run indexes (:mod:`mtneuro.datasets.run_index`), never from
their per-run datasets.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro.config.mapping import MappingParameters

from . import nodes
from .models import choose_microstructure_model, choose_region_model, microstructure_test_predictions
from .section import sample_section_patches, train_section_region_model

NAMESPACE = "mapping"
#: Datasets of other pipelines the map is made from.
MODEL_INDEXES = ("segmentation_runs", "frozen_encoders")
TABLE = "task2_segmentation"
#: What the region model's validation accuracy is measured on (ingestion's outputs).
VALIDATION_DATA = ("cubes", "split_index")
#: Outputs other pipelines (reporting) read.
OUTPUTS = ("brain_map", "mapping_validation", "mapping_overview@matplotlib")
#: The patches a section region model trains on (``mapping.regions.model: section``).
SECTION_PATCHES = "region_section_patches"
PARAMETERS = {"params:mapping", "params:volume", "params:ingestion", "params:classification"}
REGION_MODEL = ["region_encoder", "region_readout", "region_model_selection"]


def _region_model_nodes(mapping: MappingParameters) -> list[Node]:
    """The nodes that make the region model: trained for the map (``section``) or a Task 1 run."""
    if mapping.regions.model == "section":
        return [
            Node(
                sample_section_patches,
                ["params:mapping", "params:volume"],
                SECTION_PATCHES,
                name="sample_section_patches",
            ),
            Node(
                train_section_region_model,
                [SECTION_PATCHES, "params:mapping", "params:classification", "params:training"],
                REGION_MODEL,
                name="train_section_region_model",
            ),
        ]
    return [
        Node(
            choose_region_model,
            ["frozen_encoders", *VALIDATION_DATA, "params:mapping", "params:classification"],
            REGION_MODEL,
            name="choose_region_model",
        )
    ]


def create_pipeline(parameters: Any) -> Pipeline:
    """The mapping pipeline of the active configuration (``parameters.mapping``)."""
    mapping: MappingParameters = parameters.mapping
    choose_inputs = {"segmentation_runs": "segmentation_runs", "mapping": "params:mapping"}
    if mapping.microstructure.model == "best":
        choose_inputs["task2_segmentation"] = TABLE
    pipe = Pipeline(
        [
            Node(
                choose_microstructure_model, choose_inputs, "microstructure_model", name="choose_microstructure_model"
            ),
            Node(
                microstructure_test_predictions,
                choose_inputs,
                "microstructure_test_predictions",
                name="microstructure_test_predictions",
            ),
            *_region_model_nodes(mapping),
            Node(
                nodes.plan_brain_map,
                [
                    "microstructure_model",
                    "region_encoder",
                    "region_readout",
                    "params:mapping",
                    "params:volume",
                    "region_model_selection",
                ],
                "brain_map",
                name="plan_brain_map",
            ),
            Node(
                nodes.compare_with_task2,
                [
                    "microstructure_model",
                    "microstructure_test_predictions",
                    "params:mapping",
                    "params:volume",
                    "params:ingestion",
                ],
                "task2_agreement",
                name="compare_with_task2",
            ),
            Node(
                nodes.validate_brain_map,
                [
                    "brain_map",
                    "params:mapping",
                    "params:volume",
                    "params:ingestion",
                    TABLE,
                    "region_model_selection",
                    "task2_agreement",
                ],
                "mapping_validation",
                name="validate_brain_map",
            ),
            Node(
                nodes.plot_brain_map,
                ["brain_map", "mapping_validation"],
                "mapping_overview@matplotlib",
                name="plot_brain_map",
            ),
        ]
    )
    section = mapping.regions.model == "section"
    return Pipeline(
        pipe,
        namespace=NAMESPACE,
        inputs={"segmentation_runs", TABLE} if section else {*MODEL_INDEXES, *VALIDATION_DATA, TABLE},
        outputs={*OUTPUTS, SECTION_PATCHES} if section else set(OUTPUTS),
        parameters=PARAMETERS | {"params:training"} if section else PARAMETERS,
    )
