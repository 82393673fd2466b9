"""Brain-wide maps (``kedro run --pipelines=mapping``): trained models applied to the volume,
written as one OME-Zarr store (see :mod:`.nodes` and :mod:`mtneuro.datasets.ome_zarr_store`)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
