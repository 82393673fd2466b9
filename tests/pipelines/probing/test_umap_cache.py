"""UMAP's numba machine code is cached on disk, so a second process does not compile it again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mtneuro.pipelines.probing import nodes


def test_cache_folder_is_numba_cache_dir_else_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "given"))
    assert nodes.numba_cache_dir() == tmp_path / "given"
    monkeypatch.delenv("NUMBA_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert nodes.numba_cache_dir() == tmp_path / "xdg" / "mtneuro" / "numba"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert nodes.numba_cache_dir() == tmp_path / "home" / ".cache" / "mtneuro" / "numba"


_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from mtneuro.config.probing import ProbingUmap
    from mtneuro.pipelines.probing.nodes import umap_projection
    import umap.layouts

    params = ProbingUmap(encoder={"method": "pca", "train_config": "roi_c1", "seed": 0}, n_neighbors=5,
                         min_dist=0.1, n_epochs=20, metric="euclidean", random_state=0, point_size=6)
    xy = umap_projection(np.random.default_rng(0).normal(size=(40, 8)), params)
    stats = umap.layouts._nb_optimize_layout_euclidean_single_epoch.stats
    print(json.dumps({"xy": xy.tolist(), "hits": sum(stats.cache_hits.values()),
                      "misses": sum(stats.cache_misses.values())}))
    """
)


@pytest.mark.slow
def test_a_second_process_loads_umap_from_the_cache_and_projects_the_same(tmp_path):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    env.pop("NUMBA_CACHE_DIR", None)

    def run() -> dict:
        done = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout.strip().splitlines()[-1])

    first, second = run(), run()
    assert first["misses"] >= 1 and first["hits"] == 0  # compiled, then written to the cache
    assert second["hits"] >= 1 and second["misses"] == 0  # loaded, not compiled
    assert second["xy"] == first["xy"]
    assert any(Path(tmp_path, "xdg", "mtneuro", "numba").rglob("*.nbi"))
