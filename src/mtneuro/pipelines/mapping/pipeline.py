"""Mapping pipeline wiring (namespace ``mapping``).

* ``choose_microstructure_model``: the Task 2 network (``mapping.microstructure``: a named model,
  or the best candidate by mean IoU in ``task2_segmentation``) from ``segmentation_runs``, and
  its Task 2 test predictions;
* ``choose_region_model``: the Task 1 encoder and read-out (``mapping.regions``: a named run, or
  the best candidate by validation accuracy on ``cubes`` / ``split_index``) from
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

NAMESPACE = "mapping"
#: Datasets of other pipelines the map is made from.
MODEL_INDEXES = ("segmentation_runs", "frozen_encoders")
TABLE = "task2_segmentation"
#: What the region model's validation accuracy is measured on (ingestion's outputs).
VALIDATION_DATA = ("cubes", "split_index")
#: Outputs other pipelines (reporting) read.
OUTPUTS = ("brain_map", "mapping_validation", "mapping_overview@matplotlib")
PARAMETERS = {"params:mapping", "params:volume", "params:ingestion", "params:classification"}


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
            Node(
                choose_region_model,
                ["frozen_encoders", *VALIDATION_DATA, "params:mapping", "params:classification"],
                ["region_encoder", "region_readout", "region_model_selection"],
                name="choose_region_model",
            ),
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
    return Pipeline(
        pipe,
        namespace=NAMESPACE,
        inputs={*MODEL_INDEXES, *VALIDATION_DATA, TABLE, "segmentation_runs"},
        outputs=set(OUTPUTS),
        parameters=PARAMETERS,
    )
