"""Writing a small brain map from a test (also run as a script by the resume test)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from mapping_support import PHANTOM_VOLUME, make_region_model, make_segmentation_model, mapping_parameters  # noqa: E402

#: Two slices of 256 x 768 in three blocks of 256 x 256.
SMALL = {
    "window": {"z": [344, 346], "y": [640, 896], "x": [1280, 2048]},
    "blocks": {"shape_zyx": [2, 256, 256], "chunks_zyx": [2, 256, 256], "read_chunks_zyx": [2, 256, 512]},
    "pyramid": {"levels": 3},
}


def small_request(ngff_version: str = "0.4", overrides: dict[str, Any] | None = None) -> Any:
    from mtneuro.pipelines.mapping import nodes

    params = mapping_parameters("tiny", {**SMALL, "ngff_version": ngff_version, **(overrides or {})})
    encoder, readout = make_region_model()
    return nodes.plan_brain_map(make_segmentation_model(), encoder, readout, params, PHANTOM_VOLUME)


if __name__ == "__main__":  # python helpers.py <store path>
    from mtneuro.datasets.ome_zarr_store import write_map

    write_map(small_request(), sys.argv[1], progress=lambda m: print(m, flush=True))
