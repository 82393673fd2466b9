"""Every tunable number of the phantom, in one place: the per-area table and the global constants.

Calibrated on the real masks and the real section z = 309 (``docs/phantom-calibration.md``;
the statistics are defined in :mod:`mtneuro.pipelines.reporting.calibration`). To retune an
area, change its row of :data:`AREA_PARAMS` (by keyword); to retune a structure everywhere,
change its constant below. Nothing here draws random numbers (:mod:`.streams` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from mtneuro.volumes.phantom.layout import AREAS


@dataclass(frozen=True, kw_only=True)
class AreaParams:
    """Microstructure and gray values of one brain area (blended smoothly across its borders)."""

    # cells
    cell_rate: float  # candidate cells per 1e6 voxels (before rejection inside bundles)
    cell_r: float  # mean in-plane semi-axis (voxels)
    cell_rz: float  # z semi-axis relative to cell_r
    # capillaries
    capillary: float  # level-set half-width of the capillary network (fraction of field std)
    fine_capillary: float  # weight of the finer capillary network (0 coarse .. 1 fine)
    vessel_var: float  # log-scale modulation of the capillary width by a slow field (image-to-image spread)
    # myelinated fibre bundles
    axon_family: str | None  # fibre field (a key of FIBRES), None = no myelinated bundles
    axon_threshold: float  # bundle where field > threshold (field ~ N(0, 1))
    axon_var: float  # modulation of the bundle threshold by a slow field (image-to-image spread)
    # gray values
    base: float  # tissue gray value (before drift)
    texture: float  # amplitude of the mottled tissue texture (4-voxel scale)
    grain: float  # amplitude of the voxel noise before the blur (fine texture)
    axon_gain: float  # brightness of bundles over the tissue
    contrast: float  # darkness of cells and capillaries (1 = the global levels)
    rim: float  # brightness of the rim around cell bodies (gray levels before the blur)
    streak: float  # amplitude of the fine fibre streaks (gray levels)


#: Per-area parameters; the main areas (ZI, VP, STR, CTX) are calibrated on the real data.
AREA_PARAMS: dict[str, AreaParams] = {
    "hypothalamus": AreaParams(
        cell_rate=60.0,
        cell_r=4.6,
        cell_rz=1.1,
        capillary=0.16,
        fine_capillary=0.5,
        vessel_var=0.3,
        axon_family="HYP",
        axon_threshold=1.28,
        axon_var=0.3,
        base=117.7,
        texture=12.0,
        grain=28.0,
        axon_gain=30.0,
        contrast=0.8,
        rim=14.0,
        streak=5.0,
    ),
    "ZI": AreaParams(
        cell_rate=74.0,
        cell_r=4.95,
        cell_rz=1.1,
        capillary=0.16,
        fine_capillary=0.65,
        vessel_var=1.0,
        axon_family=None,
        axon_threshold=9.0,
        axon_var=0.0,
        base=113.3,
        texture=19.0,
        grain=42.0,
        axon_gain=30.0,
        contrast=0.65,
        rim=62.0,
        streak=12.0,
    ),
    "TRN": AreaParams(
        cell_rate=55.0,
        cell_r=4.6,
        cell_rz=1.1,
        capillary=0.16,
        fine_capillary=0.5,
        vessel_var=0.3,
        axon_family="TRN",
        axon_threshold=0.52,
        axon_var=0.3,
        base=117.7,
        texture=13.0,
        grain=32.0,
        axon_gain=26.0,
        contrast=1.0,
        rim=14.0,
        streak=5.0,
    ),
    "VP": AreaParams(
        cell_rate=112.0,
        cell_r=4.4,
        cell_rz=1.1,
        capillary=0.185,
        fine_capillary=0.5,
        vessel_var=0.52,
        axon_family="VP",
        axon_threshold=-0.5,
        axon_var=0.6,
        base=110.95,
        texture=14.0,
        grain=31.0,
        axon_gain=26.0,
        contrast=1.0,
        rim=32.0,
        streak=11.5,
    ),
    "internal_capsule": AreaParams(
        cell_rate=15.0,
        cell_r=3.0,
        cell_rz=1.1,
        capillary=0.12,
        fine_capillary=0.0,
        vessel_var=0.3,
        axon_family="IC",
        axon_threshold=-0.84,
        axon_var=0.0,
        base=117.7,
        texture=10.0,
        grain=25.0,
        axon_gain=34.0,
        contrast=1.0,
        rim=10.0,
        streak=5.0,
    ),
    "STR": AreaParams(
        cell_rate=92.0,
        cell_r=4.1,
        cell_rz=1.1,
        capillary=0.165,
        fine_capillary=0.0,
        vessel_var=0.25,
        axon_family="STR",
        axon_threshold=1.0,
        axon_var=0.55,
        base=109.5,
        texture=13.1,
        grain=15.0,
        axon_gain=34.0,
        contrast=1.0,
        rim=44.0,
        streak=9.5,
    ),
    "corpus_callosum": AreaParams(
        cell_rate=15.0,
        cell_r=3.0,
        cell_rz=1.1,
        capillary=0.12,
        fine_capillary=0.0,
        vessel_var=0.3,
        axon_family="CC",
        axon_threshold=-1.04,
        axon_var=0.0,
        base=117.7,
        texture=10.0,
        grain=25.0,
        axon_gain=34.0,
        contrast=1.0,
        rim=10.0,
        streak=3.0,
    ),
    "CTX": AreaParams(
        cell_rate=93.0,
        cell_r=3.53,
        cell_rz=1.1,
        capillary=0.145,
        fine_capillary=0.2,
        vessel_var=0.3,
        axon_family=None,
        axon_threshold=9.0,
        axon_var=0.0,
        base=109.5,
        texture=14.0,
        grain=15.0,
        axon_gain=34.0,
        contrast=1.15,
        rim=37.0,
        streak=7.0,
    ),
}


def area_values(name: str) -> tuple[float, ...]:
    """One parameter of every area, in the order of :data:`~.layout.AREAS` (for :func:`~.layout.blend`)."""
    return tuple(float(getattr(AREA_PARAMS[a], name)) for a in AREAS)


class FibreFamily(NamedTuple):
    """A family of fibre bundles: main direction (z, y, x), perpendicular / parallel wavelength ranges (voxels)."""

    direction: tuple[float, float, float]
    perp: tuple[float, float]
    par: tuple[float, float]


#: Fibre families: direction (z, y, x), perpendicular / parallel wavelength ranges.
FIBRES: dict[str, FibreFamily] = {
    "STR": FibreFamily(direction=(0.15, -0.25, 1.0), perp=(60.0, 150.0), par=(400.0, 1000.0)),
    "VP": FibreFamily(direction=(0.2, -0.45, 1.0), perp=(45.0, 120.0), par=(250.0, 700.0)),
    "IC": FibreFamily(direction=(0.6, 0.3, 1.0), perp=(30.0, 80.0), par=(300.0, 800.0)),
    "CC": FibreFamily(direction=(0.2, 1.0, 0.1), perp=(25.0, 60.0), par=(300.0, 800.0)),
    "TRN": FibreFamily(direction=(0.3, 1.0, 0.3), perp=(40.0, 90.0), par=(250.0, 700.0)),
    "HYP": FibreFamily(direction=(0.3, 0.6, 1.0), perp=(50.0, 120.0), par=(300.0, 800.0)),
}
FIBRE_WAVES = 16
#: Slow in-plane warp of the fibre bundles: amplitude (voxels, rms) and wavelength range.
FIBRE_WARP = 60.0
FIBRE_WARP_WAVELENGTH = (500.0, 1200.0)
CAPILLARY_WAVES = 16
#: Coarse capillary network (CTX, STR: ~13 vessel profiles of ~20-25 px per 128 x 128 image) and
#: the finer one mixed in by ``fine_capillary`` (ZI: ~37 profiles per image).
CAPILLARY_WAVELENGTH = (46.0, 78.0)
FINE_CAPILLARY_WAVELENGTH = (22.0, 38.0)
CAPILLARY_KZ = 0.5
#: Capillaries are round tubes around the zero curves of two fields (``render.capillaries``):
#: radius = CAPILLARY_RADIUS_FACTOR * capillary / (rms gradient of the fields), which keeps the
#: volume fraction of the slab intersection |f1|, |f2| < capillary it replaced (2 w^2 / pi for
#: slabs, pi R^2 times the curves' length density G^2 / (3 pi) for tubes). The displacement to
#: the curve is clipped at this many radii before the interpolation (only < 1 is drawn).
CAPILLARY_RADIUS_FACTOR = (6.0 / 3.141592653589793) ** 0.5
CAPILLARY_DIST_CLIP = 4.0
#: Where the two sheets are near parallel the tube's cross-section would stretch without bound:
#: the sine of their angle is taken at least this large (profiles at most ~3x longer than wide).
CAPILLARY_MIN_SINE = 0.35
#: The narrowest capillary lumen (radius, voxels; ~3.5 um across): where the density field thins
#: the network, its tubes keep this calibre instead of shrinking to 1-3 px specks.
CAPILLARY_MIN_RADIUS = 1.5
#: Slow fields modulating the capillary width and the bundle threshold (per-image spread).
DENSITY_WAVELENGTH = (150.0, 400.0)
DENSITY_WAVES = 6
#: The slow capillary field (~N(0, 1)) is clipped at this many standard deviations: the vessel
#: fraction grows with the square of the capillary width, so an unbounded tail would let a few
#: patches fill with vessels.
DENSITY_CLIP = 2.0
#: The capillary density field varies on a shorter scale than the bundle field (a 256-voxel cube
#: holds several patches, so one cube's mean vessel fraction scatters less between seeds while
#: its 128-px quadrants still differ) and faster along z (the real ZI/VP vessel fractions change
#: from slice to slice). Along z it varies 3x as fast as in-plane (z wavelengths ~30-75 slices),
#: so that the 50 test slices of a main cube (z 420-470) span several dense and sparse phases
#: like its training slices do: at 1.5x the base VP cube's test block sat in a dense phase
#: (vessel 4.1 % vs 1.8 % in training, image std +1.3 training sds; issue 24,
#: docs/phantom-calibration.md, tests/volumes/test_phantom.py).
VESSEL_DENSITY_WAVELENGTH = (90.0, 220.0)
VESSEL_DENSITY_KZ = 3.0
#: The slow fields and the fibre bundles vary this much slower along z than in the section
#: plane, so that a main cube's test slices (z 420-470) look like its training slices: the
#: between-image spread comes from y and x; along z one cube drifts little (as the real
#: section's tiles drift little over a cube's width, docs/phantom-calibration.md).
SLOW_KZ = 0.15
FIBRE_KZ = 2.5
#: Large vessels: one per lattice cell of this many voxels in (y, x), jittered; radius range
#: (voxels) and the in-plane distance travelled per slice (tilt) of the tube.
LARGE_VESSEL_SPACING = 450.0
LARGE_VESSEL_RADIUS = (4.0, 8.0)
LARGE_VESSEL_TILT = (0.5, 1.2)
#: Fine fibre streaks: a family of waves across the streak direction (z, y, x).
STREAK_DIRECTION = (0.2, -0.45, 1.0)
STREAK_WAVES = 6
STREAK_PERP = (5.0, 9.0)
STREAK_PAR = (60.0, 200.0)
#: Cell bodies: log-scale sd of their size (uniform in log) and the power of the z term of their
#: superellipsoid (|z / c|^power: flat-topped, so a section cuts near the full profile or misses;
#: the real somata's profiles have a narrow size distribution: area p90 / mean 1.5-1.8, and few
#: small polar cuts: p10 / mean 0.35-0.5).
CELL_SIZE_SPREAD = 0.15
CELL_Z_POWER = 6  # even
#: Cell rims: width (voxels) of the bright shell around each cell body.
RIM_WIDTH = 2.5

# Coarse lattice step of the smooth fields, blur, padding.
STEP = 4
BLUR_SIGMA = 1.0
BLUR_RADIUS = 4  # truncation radius of the 3D blur
HALO_SIGMA = 2.0  # in-plane scale of the phase-contrast halo (unsharp mask)
HALO_RADIUS = 6
HALO = 1.2
PAD = (BLUR_RADIUS, BLUR_RADIUS + HALO_RADIUS, BLUR_RADIUS + HALO_RADIUS)  # z, y, x
NO_PAD = (0, 0, 0)
CELL_GRID = 64
MAX_BLOCK = 48_000_000  # voxels generated at once (bounds the memory of a read)
CELL_SLOTS = 48
CELL_MARGIN = 16  # > largest cell semi-axis

# Gray values.
OUTSIDE = 6.0
CAPILLARY_LEVEL = 35.0
LUMEN_LEVEL = 14.0
WALL_GAIN = 22.0
CELL_DARKNESS = 85.0
POST_NOISE = 5.0
MID = 125.0


#: Brightness across the section (measured on the real section z = 309, docs/phantom-calibration.md).
#: The real tissue is brighter near its top and bottom edges in every area (by ~25-45 gray levels
#: 50-150 px inside, fading over ~200 px; a stain-penetration / cupping profile) and its texture
#: stronger there (local std +20-40 % in hypothalamus, ZI, VP, STR); it has no trend along x
#: beyond the areas' own gray values. With p(d) = (1 - exp(-d / EDGE_RISE)) * exp(-d / EDGE_DECAY)
#: at distance d (voxels, along y) from the nearer edge: offset EDGE_BRIGHTENING * p, gain
#: 1 + EDGE_GAIN * p.
EDGE_BRIGHTENING = 50.0
EDGE_GAIN = 0.25
EDGE_RISE = 30.0
EDGE_DECAY = 200.0
#: A stationary slow 3D field of gray offset (std, gray levels) and gain (std, relative) with the
#: same statistics everywhere (tissue density / stain uptake): one cube's slices and the cubes of
#: one region differ in brightness by about as much as the real section's tiles of one region do,
#: and no place is brighter on average than another (no far-field drift).
BRIGHTNESS_STD = 9.0
GAIN_STD = 0.15
BRIGHTNESS_WAVELENGTH = (100.0, 300.0)
BRIGHTNESS_WAVES = 8
#: Slice-wise fluctuation of the whole section (gray levels, relative gain): source flicker.
SLICE_OFFSETS = (2.0, 1.5)
SLICE_GAIN = 0.03
