"""Probing (Task 3): linear read-out of semantic features from frozen Task 1 encoders."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
