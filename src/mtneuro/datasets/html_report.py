"""A figure dataset that can be read back: saves a matplotlib Figure as PNG, loads PNG bytes.

``matplotlib.MatplotlibDataset`` cannot load, so a node downstream of a figure (the HTML report,
which inlines every figure as base64) could not take it as an input.  This dataset saves what
``MatplotlibDataset`` saves (one Figure, as a PNG file) and loads the file's bytes, which
:func:`mtneuro.pipelines.reporting.html.image_data_uris` embeds as they are.

.. code-block:: yaml

    task3_umap:
      type: mtneuro.datasets.html_report.FigureDataset
      filepath: ${runtime_params:data_root,data}/08_reporting/task3_umap.png
      save_args: {dpi: 110}
"""

from __future__ import annotations

import io
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def figure_to_png(data: Any, save_args: dict[str, Any] | None = None) -> bytes:
    """PNG bytes of a matplotlib Figure, a PIL image, an image array, or PNG bytes as they are."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        data = bytes(data)
        if not data.startswith(PNG_SIGNATURE):
            raise DatasetError("FigureDataset: the bytes to save are not a PNG image")
        return data
    buffer = io.BytesIO()
    if hasattr(data, "savefig"):  # matplotlib Figure
        data.savefig(buffer, **{**(save_args or {}), "format": "png"})
    else:
        import numpy as np
        from PIL import Image

        image = data if isinstance(data, Image.Image) else Image.fromarray(np.asarray(data))
        image.save(buffer, format="PNG")
    return buffer.getvalue()


class FigureDataset(AbstractDataset[Any, bytes]):
    """Saves a Figure (or PIL image, image array, PNG bytes) as a PNG file; loads the PNG bytes."""

    DEFAULT_SAVE_ARGS: dict[str, Any] = {"dpi": 110, "bbox_inches": "tight"}

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath))
        fs_args = deepcopy(fs_args) or {}
        if protocol == "file":
            fs_args.setdefault("auto_mkdir", True)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **fs_args)
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self.metadata = metadata

    def _path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def load(self) -> bytes:
        with self._fs.open(self._path(), mode="rb") as f:
            return f.read()

    def save(self, data: Any) -> None:
        png = figure_to_png(data, self._save_args)
        with self._fs.open(self._path(), mode="wb") as f:
            f.write(png)
        self._fs.invalidate_cache(self._path())

    def _exists(self) -> bool:
        return self._fs.exists(self._path())

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol, "save_args": self._save_args}
