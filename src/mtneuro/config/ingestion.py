"""The ``ingestion``  parameter block (placeholder: accepts any keys until typed)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict

from mtneuro.config.base import StrictModel


class IngestionParameters(StrictModel):
    model_config = ConfigDict(extra="allow")

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)
