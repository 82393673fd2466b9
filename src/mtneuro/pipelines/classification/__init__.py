"""Task 1: brain-region classification of single sections (ROI-C1/C2/C3), every method x seed."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
