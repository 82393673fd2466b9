"""Reporting: the three task tables -> the paper's Tables 1-3 (Markdown + CSV) and report.html."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
