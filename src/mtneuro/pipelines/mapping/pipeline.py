"""Mapping pipeline wiring (namespace ``mapping``).

* ``select_microstructure_model``: the Task 2 network (``mapping.microstructure``: a named model,
  or the best candidate by mean IoU in ``task2_segmentation``);
* ``plan_brain_map`` -> ``brain_map`` (the OME-Zarr store, written block by block by its dataset);
* ``validate_brain_map`` -> ``mapping_validation`` (region accuracy, microstructure IoU);
* ``plot_brain_map`` -> ``mapping_overview@matplotlib``.

The model datasets are the task runs' own (``segmentation.<model>.<setting>.seed<k>.trained_model``,
``classification.<method>.<config>.seed<k>.frozen_encoder`` / ``.readout``); their names come from
:func:`model_inputs` so that another wiring can rename them in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro.pipeline import Node, Pipeline

from mtneuro.config.mapping import MappingParameters

from . import nodes

#: Outputs other pipelines (reporting) read.
OUTPUTS = ("brain_map", "mapping_validation", "mapping_overview@matplotlib")


def model_inputs(mapping: MappingParameters) -> dict[str, Any]:
    """Catalog names of the models the map is made with (and the table ``best`` reads)."""
    m, r = mapping.microstructure, mapping.regions
    encoder, readout = nodes.region_datasets(r.method, r.config, r.seed)
    return {
        "microstructure": {
            name: nodes.microstructure_dataset(name, m.setting, m.seed)
            for name in nodes.microstructure_candidates(mapping)
        },
        "table": "task2_segmentation" if m.model == "best" else None,
        "region_encoder": encoder,
        "region_readout": readout,
    }


def create_pipeline(parameters: Any) -> Pipeline:
    """The mapping pipeline of the active configuration (``parameters.mapping``)."""
    mapping: MappingParameters = nodes.as_parameters(parameters.mapping)
    names = model_inputs(mapping)
    select_inputs: dict[str, str] = {"mapping": "params:mapping", **names["microstructure"]}
    select: Callable[..., Any]
    if names["table"]:
        select_inputs["task2_segmentation"] = names["table"]
        select = nodes.select_microstructure_model
    else:

        def select(mapping: MappingParameters, **models: Any) -> Any:
            return nodes.select_microstructure_model(None, mapping, **models)

        select.__name__ = "select_microstructure_model"
    external = {*names["microstructure"].values(), names["region_encoder"], names["region_readout"]}
    if names["table"]:
        external.add(names["table"])
    pipe = Pipeline(
        [
            Node(select, select_inputs, "microstructure_model", name="select_microstructure_model"),
            Node(
                nodes.plan_brain_map,
                [
                    "microstructure_model",
                    names["region_encoder"],
                    names["region_readout"],
                    "params:mapping",
                    "params:volume",
                ],
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
        namespace="mapping",
        inputs=external,
        outputs=set(OUTPUTS),
        parameters={"params:mapping", "params:volume", "params:ingestion"},
    )
