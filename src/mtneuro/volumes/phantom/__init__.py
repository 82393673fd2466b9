"""Built-in synthetic phantom of the prasad2020 volume: ``phantom://prasad2020/<channel>``.

The phantom stands in for the real X-ray microCT volume (BossDB) so that every pipeline runs
without network access. It has the real volume's shape ``(720, 1420, 5805)``, voxel size
(1.17 um) and dtypes (``image`` uint8, ``roi_labels`` and ``pixel_labels`` uint64).

Everything is generated lazily, window by window, from the seed and *global* coordinates:
reading a window gives exactly the voxels that a larger read would hold there. The package:

=========== ==================================================================================
``layout``  brain areas, wiggling borders, tissue outline, ``roi_labels`` (seed-independent)
``params``  every tunable number: the per-area table :data:`AREA_PARAMS` and global constants
``streams`` named random streams of a seed (global generators and coordinate hashes)
``fields``  smooth random fields (wave sums on a coarse lattice) and the per-seed model
``render``  cells, capillaries, large vessels, bundles of a window; ``pixel_labels``
``image``   gray values: structures to a uint8 image (drift, blur, halo, noise)
``source``  :class:`PhantomVolume` and the ``phantom://`` opener
=========== ==================================================================================

Large vessels are tubes drawn per seed on a jittered lattice over the whole section, at the
same density in every brain area and cube: no large vessel is tied to one cube, so it tells
nothing about the region. ``sample_sections(z_indices, level)`` returns sections subsampled by
``2**level`` in y and x (analytic, milliseconds, for ``roi_labels``). The microstructure of the
last cube-sized read is kept so that the three channels of a cube are generated once;
:func:`clear_cache` frees it.

Microstructure (vessel / cell / axon fractions, cells per 128x128 image, cell size, nearest
neighbour distance, vessel profiles per image and their size, per-image spread of the vessel and
axon fractions) is calibrated on the real masks, and the gray values (region means, texture, fine
fibre streaks, bright cell rims) on the real section z = 309;
:mod:`mtneuro.pipelines.reporting.calibration` defines the statistics and
``docs/phantom-calibration.md`` gives the numbers.

Pixel labels are dense only inside the four main cubes (0 elsewhere, as on BossDB); the image
shows the structures everywhere. ``dense_labels=True`` (pixel_labels only) labels everything
drawn, for validation (mapping truth), never for training.
"""

from __future__ import annotations

from mtneuro.volumes.phantom.layout import AREAS, region_x_range, safe_region_box
from mtneuro.volumes.phantom.params import AREA_PARAMS, AreaParams
from mtneuro.volumes.phantom.render import clear_cache
from mtneuro.volumes.phantom.source import CHANNELS, DATASET, DTYPES, PhantomVolume, open_phantom

__all__ = [
    "AREAS",
    "AREA_PARAMS",
    "CHANNELS",
    "DATASET",
    "DTYPES",
    "AreaParams",
    "PhantomVolume",
    "clear_cache",
    "open_phantom",
    "region_x_range",
    "safe_region_box",
]
