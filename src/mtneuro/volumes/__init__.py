"""Volume sources: the one place that knows how to read a channel of a 3D volume.

A channel is opened by URI with :func:`open_volume` and read by half-open windows
``[z0:z1, y0:y1, x0:x1]`` (:meth:`VolumeSource.read`) or as downsampled whole sections
(:meth:`VolumeSource.sample_sections`). Schemes, one module each:

* ``phantom://prasad2020/{image,roi_labels,pixel_labels}`` -- the built-in synthetic volume
  (:mod:`mtneuro.volumes.phantom`), the default, needs no network;
* ``bossdb://collection/experiment/channel`` -- the real data, read through the ``intern``
  client (:class:`BossDBVolume`, :mod:`mtneuro.volumes.bossdb`);
* ``zarr:///abs/path/volume.zarr`` -- a Zarr array, or an OME-Zarr multiscale group (its first
  dataset is the full resolution; lower levels serve :meth:`~VolumeSource.sample_sections`).
  A named array or sub-group inside a group: ``zarr:///abs/path/store.zarr?array=name``
  (:class:`ZarrVolume`, :mod:`mtneuro.volumes.zarr`);
* ``tiff:///abs/path/folder`` -- a folder of 2D TIFF slices, one per z, in natural order of
  their file names (:class:`TiffFolderVolume`, :mod:`mtneuro.volumes.tiff`), or
  ``tiff:///abs/path/stack.tif`` -- one multi-page TIFF (:class:`TiffStackVolume`).

Every reader returns numpy arrays in ``[z, y, x]`` order and raises :class:`VolumeSourceError`
with a message that names the parameter (or file) to fix.

Layout: :mod:`~mtneuro.volumes.base` (windows, the :class:`VolumeSource` interface, errors),
:mod:`~mtneuro.volumes.registry` (scheme -> opener, :func:`open_volume`),
:mod:`~mtneuro.volumes.progress` (download progress) and one module per source. A new source is
one new module in this package whose opener is decorated with ``@register_scheme("<scheme>")``;
the registry imports the package's modules on the first :func:`open_volume` (see
:mod:`~mtneuro.volumes.registry`).

Options (keyword arguments of :func:`open_volume`)
--------------------------------------------------
All schemes: ``expected_dtype`` -- raise :class:`DTypeMismatchError` when the channel has
another dtype. Options a scheme does not know are ignored, so one options mapping can be passed
to every channel.

``phantom``: ``seed`` (0) picks the random microstructure.

``bossdb``: ``host`` (default ``api.bossdb.io``), ``protocol`` (``https``), ``token``
(``public``, the public read-only token), ``chunk_size`` (z, y, x voxels per cutout request,
default ``(32, 512, 512)``), ``retries`` (5), ``backoff`` (0.5 s, urllib3's exponential backoff
factor, capped by ``backoff_max`` = 30 s), ``timeout`` (seconds, or ``[connect, read]``; default
``[10, 120]``), ``workers`` (parallel requests, 4), ``progress`` (``auto``: a rich progress bar
on a terminal, log lines otherwise; ``bar``, ``log`` or ``off``) and ``log_interval`` (seconds
between progress log lines, 5; 0 logs every chunk). Host, protocol and token normally come from
the Kedro credentials, e.g. ``conf/local/credentials.yml``::

    bossdb:
      protocol: https        # http for a local test server
      host: api.bossdb.io    # host[:port]
      token: public          # your BossDB API token for private data

``zarr`` / ``tiff``: ``voxel_size`` -- (z, y, x) micrometres, overriding what the store says
(TIFF folders and plain Zarr arrays carry none and default to 1.0).
"""

from __future__ import annotations

import importlib
from typing import Any

from mtneuro.volumes.base import (
    PHANTOM_SOURCE,
    SOURCE_PARAMETER,
    URIS_PARAMETER,
    ChannelNotFoundError,
    DTypeMismatchError,
    SourceUnreachableError,
    VolumeSource,
    VolumeSourceError,
    Window,
    check_dtype,
    sections_shape,
)
from mtneuro.volumes.registry import open_volume, register_scheme, schemes

#: Names re-exported from the source modules, imported on first use (the phantom needs SciPy).
_LAZY = {
    "BossDBVolume": "bossdb",
    "open_bossdb": "bossdb",
    "ZarrVolume": "zarr",
    "open_zarr": "zarr",
    "TiffFolderVolume": "tiff",
    "TiffStackVolume": "tiff",
    "open_tiff": "tiff",
    "PhantomVolume": "phantom",
    "open_phantom": "phantom",
}

__all__ = [
    "PHANTOM_SOURCE",
    "SOURCE_PARAMETER",
    "URIS_PARAMETER",
    "ChannelNotFoundError",
    "DTypeMismatchError",
    "SourceUnreachableError",
    "VolumeSource",
    "VolumeSourceError",
    "Window",
    "check_dtype",
    "open_volume",
    "register_scheme",
    "schemes",
    "sections_shape",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
