"""The package installed from its wheel, in a fresh virtual environment, sees the same run grid.

Nothing in the package may find ``conf/`` from its own location: the wheel lives in
``site-packages`` and the configuration comes from ``--conf-source``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mtneuro.config import load_parameters
from mtneuro.pipeline_registry import build_pipelines

PROJECT = Path(__file__).resolve().parents[2]

LIST_GRID = """
import json, sys
from kedro.framework.project import configure_project, pipelines
from kedro.framework.session import KedroSession
configure_project("mtneuro")
import importlib.util, mtneuro
print(json.dumps({"mtneuro": mtneuro.__file__, "pytest": importlib.util.find_spec("pytest") is not None}))
with KedroSession.create(conf_source=sys.argv[1], env=sys.argv[2]) as session:
    session.load_context()
    print(json.dumps({"grid": {name: sorted(n.name for n in p.nodes) for name, p in pipelines.items()}}), flush=True)
# then ``python -m mtneuro <the rest of the arguments>``, in this interpreter (what ``-m`` does):
# one start of torch & co. fewer than a second process
import runpy
sys.argv = ["mtneuro", *sys.argv[3:]]
runpy.run_module("mtneuro", run_name="__main__", alter_sys=True)
"""


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to build the wheel")
    return uv


#: The first token of a requirement line of ``uv export`` (its distribution's name).
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _link_runtime_distributions(requirements: Path, site_packages: Path) -> int:
    """Link the project environment's installed files of every locked runtime distribution
    (``requirements``, no dev group) into ``site_packages``: the same files ``uv pip install``
    of the lock would put there, without installing (and compiling) 300 packages again. Only
    what lies in site-packages is linked (no scripts: the test runs ``python -m``); the project
    itself is not among them (the wheel is installed). The number of distributions linked."""
    wanted = {
        _canonical(m.group(1)) for line in requirements.read_text().splitlines() if (m := _REQUIREMENT.match(line))
    }
    linked = 0
    for dist in importlib.metadata.distributions():
        if _canonical(dist.metadata["Name"]) not in wanted:
            continue
        assert dist.files is not None, f"{dist.metadata['Name']} has no RECORD"
        linked += 1
        for top in {f.parts[0] for f in dist.files if f.parts[0] not in ("..", "__pycache__")}:
            target = site_packages / top
            if not target.exists() and not target.is_symlink():
                target.symlink_to(Path(str(dist.locate_file(top))))
    return linked


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the locked runtime dependencies (linked from the
    project's environment: ``_link_runtime_distributions``) and the project's wheel, installed."""
    uv = _uv()
    root = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    source = root / "source"  # the tracked sources only: a stale build/ in the checkout must not leak in
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT / name, source / name)
    shutil.copytree(PROJECT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run(
        [uv, "build", "--wheel", "-o", str(root / "dist"), str(source)], check=True, capture_output=True, env=env
    )
    wheel = next((root / "dist").glob("mtneuro-*.whl"))
    requirements = root / "requirements.txt"
    subprocess.run(
        [
            uv,
            "export",
            "--format",
            "requirements-txt",
            "--no-hashes",
            "--no-emit-project",
            "--no-dev",
            "-q",
            "-o",
            str(requirements),
        ],
        check=True,
        cwd=PROJECT,
        capture_output=True,
        env=env,
    )
    venv = root / "venv"
    subprocess.run([uv, "venv", "-q", str(venv), "--python", sys.executable], check=True, capture_output=True, env=env)
    python = venv / "bin" / "python"
    site_packages = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert _link_runtime_distributions(requirements, site_packages) > 200  # the lock's ~300, less other platforms'
    subprocess.run(
        [uv, "pip", "install", "-q", "--no-deps", "--compile-bytecode", "--python", str(python), str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    return python


@pytest.mark.slow
def test_the_wheel_sees_the_same_grid_and_runs(wheel_venv: Path, tmp_path: Path):
    workdir = tmp_path / "elsewhere"  # not the project: nothing may be found relative to it
    workdir.mkdir()
    shutil.copy(PROJECT / ".telemetry", workdir / ".telemetry")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    conf = str(PROJECT / "conf")

    data_root = tmp_path / "data"
    run = subprocess.run(
        [
            str(wheel_venv),
            "-c",
            LIST_GRID,
            conf,
            "tiny",
            "--conf-source",
            conf,
            "--env",
            "tiny",
            "--pipelines",
            "ingestion",
            "--params",
            f"data_root={data_root}",
        ],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    where = next(json.loads(line) for line in lines if line.startswith('{"mtneuro"'))
    grid = next(json.loads(line)["grid"] for line in lines if line.startswith('{"grid"'))
    assert Path(where["mtneuro"]).is_relative_to(wheel_venv.parent.parent), where  # the installed wheel
    assert not where["pytest"]  # only the runtime dependencies: no dev group
    expected = {
        name: sorted(n.name for n in p.nodes) for name, p in build_pipelines(load_parameters(conf, "tiny")).items()
    }
    assert grid == expected
    assert str(wheel_venv.parent.parent) not in str(
        Path(__import__("mtneuro").__file__)
    )  # this process uses the checkout

    # the run of ``python -m mtneuro`` (in the same interpreter: ``LIST_GRID``)
    cubes = sorted(p.name for p in (data_root / "02_intermediate" / "cubes").glob("*.zarr"))
    assert len(cubes) == 16, cubes
    assert (data_root / "03_primary" / "split_index.parquet").exists()
