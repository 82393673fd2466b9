"""Ingestion: turns a volume source into the cubes and split index every task reads."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
