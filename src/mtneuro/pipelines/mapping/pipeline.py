"""Mapping pipeline wiring (namespace ``mapping``).

* ``choose_microstructure_model``: the Task 2 network (``mapping.microstructure``: a named model,
  or the best candidate by mean IoU in ``task2_segmentation``) from ``segmentation_runs``;
* ``choose_region_model``: the Task 1 encoder and read-out (``mapping.regions``) from
  ``frozen_encoders``;
* ``plan_brain_map`` -> ``brain_map`` (the OME-Zarr store, written block by block by its dataset);
* ``validate_brain_map`` -> ``mapping_validation`` (region accuracy, microstructure IoU);
* ``plot_brain_map`` -> ``mapping_overview@matplotlib``.

The models come from the tasks' run indexes (:mod:`mtneuro.datasets.run_index`), never from
their per-run datasets.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro.config.mapping import MappingParameters

from . import nodes
from .models import choose_microstructure_model, choose_region_model

NAMESPACE = "mapping"
#: Datasets of other pipelines the map is made from.
MODEL_INDEXES = ("segmentation_runs", "frozen_encoders")
TABLE = "task2_segmentation"
#: Outputs other pipelines (reporting) read.
OUTPUTS = ("brain_map", "mapping_validation", "mapping_overview@matplotlib")
PARAMETERS = {"params:mapping", "params:volume", "params:ingestion"}


def create_pipeline(parameters: Any) -> Pipeline:
    """The mapping pipeline of the active configuration (``parameters.mapping``)."""
    mapping: MappingParameters = nodes.as_parameters(parameters.mapping)
    choose_inputs = {"segmentation_runs": "segmentation_runs", "mapping": "params:mapping"}
    if mapping.microstructure.model == "best":
        choose_inputs["task2_segmentation"] = TABLE
    pipe = Pipeline(
        [
            Node(
                choose_microstructure_model, choose_inputs, "microstructure_model", name="choose_microstructure_model"
            ),
            Node(
                choose_region_model,
                ["frozen_encoders", "params:mapping"],
                ["region_encoder", "region_readout"],
                name="choose_region_model",
            ),
            Node(
                nodes.plan_brain_map,
                ["microstructure_model", "region_encoder", "region_readout", "params:mapping", "params:volume"],
                "brain_map",
                name="plan_brain_map",
            ),
            Node(
                nodes.validate_brain_map,
                ["brain_map", "params:mapping", "params:volume", "params:ingestion"],
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
        inputs={*MODEL_INDEXES, *set(choose_inputs.values()) - {"params:mapping"}},
        outputs=set(OUTPUTS),
        parameters=PARAMETERS,
    )
