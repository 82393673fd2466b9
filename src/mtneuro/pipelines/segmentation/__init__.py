"""Segmentation (Task 2): 2D and 3D microstructure segmentation of the main cubes' slices.

``create_pipeline`` is imported lazily so that the training and inference code
(:mod:`.engine`, :mod:`.nodes`) can be used without Kedro's pipeline machinery (e.g. by
``benchmarks/bench_segmentation.py`` on a GPU machine).
"""

from typing import Any

__all__ = ["create_pipeline"]


def __getattr__(name: str) -> Any:
    if name == "create_pipeline":
        from .pipeline import create_pipeline

        return create_pipeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
