"""Fidelity of the chosen cubes: held-out cubes keep their distance, regions map as the authors map them.

The region overview is read from the phantom through the real catalog dataset (files on disk),
for the base and the paper profile (the paper profile with the phantom as its source: the
paper's cube sizes, no network).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mtneuro import spec
from mtneuro.cubes import SectionOverview
from mtneuro.datasets.cube_store import SectionOverviewDataset
from mtneuro.pipelines.ingestion import nodes
from mtneuro.volumes import open_volume

PHANTOM = {"volume.source": "phantom"}


def _gap(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Largest per-axis gap between two half-open boxes (written independently of the node)."""
    gaps = []
    for axis in range(3):
        lo_a, hi_a, lo_b, hi_b = a[2 * axis], a[2 * axis + 1], b[2 * axis], b[2 * axis + 1]
        gaps.append(max(lo_b - hi_a, lo_a - hi_b, 0))
    return max(gaps)


def _overview(tmp_path: Path, parameters) -> SectionOverview:
    dataset = SectionOverviewDataset(str(tmp_path / "region_overview.npz"))
    dataset.save(nodes.plan_region_overview(parameters.volume, parameters.ingestion))
    return dataset.load()


@pytest.mark.parametrize("env", ["local", "paper"])
def test_held_out_cubes_keep_the_margin_from_every_training_cube(tmp_path, parameters_with, env):
    parameters = parameters_with(env, **PHANTOM)
    ingestion = parameters.ingestion
    margin = ingestion.extra_cubes.min_separation
    assert margin >= 256  # one full cube width, from conf/base
    table = nodes.choose_extra_cubes(_overview(tmp_path, parameters), parameters.volume, ingestion)
    assert len(table) == 4 * ingestion.extra_cubes.per_region
    assert (table["min_separation"] == margin).all()

    def box(row) -> tuple[int, ...]:
        return (row.z0, row.z1, row.y0, row.y1, row.x0, row.x1)

    full_mains = [(*b.z, *b.y, *b.x) for b in ingestion.main_cubes.by_region().values()]
    tests = [box(r) for r in table.itertuples() if r.use == "test"]
    trains = [box(r) for r in table.itertuples() if r.use == "train"]
    assert len(tests) == 8 and len(trains) == 4
    for held_out in tests:
        for training in full_mains + trains:
            assert _gap(held_out, training) >= margin, (held_out, training)
    for a, b in itertools.combinations(tests + trains, 2):
        assert _gap(a, b) > 0 or not all(a[2 * i] < b[2 * i + 1] and b[2 * i] < a[2 * i + 1] for i in range(3)), (a, b)
    for training in trains:  # train extras never overlap the full main boxes
        assert all(
            not all(
                t_lo < m_hi and m_lo < t_hi
                for t_lo, t_hi, m_lo, m_hi in zip(training[::2], training[1::2], m[::2], m[1::2])
            )
            for m in full_mains
        )
    # the recorded separation is the true distance to the nearest training (or test) cube
    for row in table.itertuples():
        others = full_mains + trains if row.use == "test" else tests
        assert row.separation == min(_gap(box(row), o) for o in others) >= (margin if row.use == "test" else 0)
        # every extra's distance to the full main boxes; train extras (training data) may be closer
        assert row.main_separation == min(_gap(box(row), m) for m in full_mains)
        assert row.main_separation >= (margin if row.use == "test" else 0)


def test_region_defaults_are_the_authors_groupings_and_label_every_main_cube(parameters_with):
    parameters = parameters_with(**PHANTOM)
    # MTNeuro/bossdbdataset.py, lines 225-234
    assert parameters.volume.region_values() == {"CTX": [0, 1], "STR": [2, 8], "VP": [3, 4], "ZI": [5, 6, 7]}
    groups = [set(v) for v in parameters.volume.region_values().values()]
    assert all(a.isdisjoint(b) for a, b in itertools.combinations(groups, 2))
    roi = open_volume("phantom://prasad2020/roi_labels")
    values = parameters.volume.region_values()
    to_region = {v: r for r, vs in values.items() for v in vs}
    for region, window in nodes.main_cube_windows(parameters.ingestion).items():
        labels = roi.read(window)
        assert np.isin(labels, values[region]).mean() >= parameters.ingestion.min_cube_region_fraction
        # the authors label an image by its most common value: every slice gets its own region
        for section in labels:
            found, counts = np.unique(section, return_counts=True)
            assert to_region[int(found[np.argmax(counts)])] == region


def test_extra_cubes_lie_in_labelled_tissue_of_their_region(tmp_path, parameters_with):
    """0 (unlabelled, outside the tissue) counts as CTX for images, never for choosing cubes."""
    parameters = parameters_with(**PHANTOM)
    table = nodes.choose_extra_cubes(_overview(tmp_path, parameters), parameters.volume, parameters.ingestion)
    roi = open_volume("phantom://prasad2020/roi_labels")
    for row in table.itertuples():
        zs = np.linspace(row.z0, row.z1 - 1, 4).round().astype(int)
        sections = np.stack([roi.read((int(z), int(z) + 1, row.y0, row.y1, row.x0, row.x1))[0] for z in zs])
        assert (sections == 0).mean() < 0.05, row.cube_id
        own = [v for v in parameters.volume.region_values()[row.region] if v != 0]
        assert np.isin(sections, own).mean() >= 0.9, row.cube_id
    ctx = table[table.region == "CTX"]
    assert (ctx.x0 >= 4380 - 50).all()  # inside the phantom's cortex band, not the dark corners
    assert tuple(dict.fromkeys(table.region)) == spec.REGIONS
