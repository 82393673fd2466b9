"""The run times the README quotes, measured by running the README's own commands, never typed by hand.

    uv run python benchmarks/readme_figures.py measure tiny           # `kedro run --env=tiny`, a fresh data root
    uv run python benchmarks/readme_figures.py measure default        # `kedro run` (about 11 min on 2 cores)
    uv run python benchmarks/readme_figures.py measure suite quick    # `pytest`, `pytest -m "not slow"`
    uv run python benchmarks/readme_figures.py write                  # README's block from the record

``measure`` runs each command as a user would (``uv run`` is the caller's; runs get a temporary data
root) and keeps wall time, exit status, cores, load average, commit and date in
``benchmarks/readme_figures.json``; ``write`` renders the README's "Measured run times" block
from that record. ``tests/project/test_readme_figures.py`` fails when the README's block is not
the record's, so a figure changed by hand, or a record not written back, is caught.
Time on an idle machine: the load average at the start and the end is kept beside each figure.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
RECORD = PROJECT / "benchmarks" / "readme_figures.json"
README = PROJECT / "README.md"
BEGIN = "<!-- readme_figures: begin (benchmarks/readme_figures.py write; do not edit by hand) -->"
END = "<!-- readme_figures: end -->"

#: What each figure is, the README's command, and how it runs here (``{root}``: a fresh data root).
FIGURES: dict[str, tuple[str, str, list[str]]] = {
    "default": (
        "the default run (phantom, all pipelines)",
        "uv run kedro run",
        [sys.executable, "-m", "kedro", "run", "--params", "data_root={root}"],
    ),
    "tiny": (
        "the tiny profile (every pipeline, smoke-test sizes)",
        "uv run kedro run --env=tiny",
        [sys.executable, "-m", "kedro", "run", "--env=tiny", "--params", "data_root={root}"],
    ),
    "suite": ("the test suite", "uv run pytest", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]),
    "quick": (
        "the quick suite (no end-to-end runs)",
        'uv run pytest -m "not slow"',
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow"],
    ),
}


def _load() -> float:
    return round(os.getloadavg()[0], 1)


def _commit() -> str:
    run = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=PROJECT, capture_output=True, text=True)
    return run.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def _summary(output: str) -> str:
    """pytest's last line (``531 passed, 2 skipped in ...``), without its own timing."""
    for line in reversed(output.splitlines()):
        if re.search(r"\d+ (passed|failed)", line):
            return re.sub(r"\s+in [\d.]+s.*$", "", line.strip("= ").strip())
    return ""


def measure(name: str, keep: Path | None = None) -> dict[str, object]:
    """One figure; ``keep``: copy the run's reports (``08_reporting``) there before its data root goes."""
    _, _, command = FIGURES[name]
    with tempfile.TemporaryDirectory(prefix=f"mtneuro-{name}-") as root:
        argv = [part.format(root=root) for part in command]
        load_before = _load()
        started = time.perf_counter()
        run = subprocess.run(argv, cwd=PROJECT, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        reports = Path(root) / "08_reporting"
        if keep is not None and reports.is_dir():
            shutil.copytree(reports, keep / name, dirs_exist_ok=True)
            print(f"  reports kept in {keep / name}", flush=True)
    log = Path(tempfile.gettempdir()) / f"readme_figures-{name}.log"
    log.write_text(run.stdout + run.stderr)
    print(f"  output: {log}", flush=True)
    figure: dict[str, object] = {
        "seconds": round(seconds, 1),
        "exit": run.returncode,
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_before": load_before,
        "load_after": _load(),
        "commit": _commit(),
        "date": date.today().isoformat(),
    }
    if name in ("suite", "quick"):
        figure["result"] = _summary(run.stdout + run.stderr)
    return figure


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def render(record: dict[str, dict[str, object]]) -> str:
    """The README's block: one row per measured figure, with the machine's state beside it."""
    rows = [
        BEGIN,
        "| command | what | wall time | measured on |",
        "|---|---|---|---|",
    ]
    for name, (what, command, _) in FIGURES.items():
        figure = record.get(name)
        if figure is None:
            continue
        result = f"; {figure['result']}" if figure.get("result") else ""
        status = "" if figure["exit"] == 0 else f", exit {figure['exit']}"
        load = figure.get("note") or f"load {figure['load_before']} -> {figure['load_after']}"
        rows.append(
            f"| `{command}` | {what} | {_duration(float(figure['seconds']))}{status}{result} | "  # type: ignore[arg-type]
            f"{figure['cores']} cores, {load}, {figure['commit']}, {figure['date']} |"
        )
    rows.append(END)
    return "\n".join(rows)


def read_record(path: Path = RECORD) -> dict[str, dict[str, object]]:
    return json.loads(path.read_text()) if path.exists() else {}


def readme_block(text: str) -> str:
    """The README's current block (from BEGIN to END), or "" without one."""
    start, end = text.find(BEGIN), text.find(END)
    return text[start : end + len(END)] if start >= 0 and end > start else ""


def write_readme(record: dict[str, dict[str, object]], path: Path = README) -> None:
    text = path.read_text()
    block = readme_block(text)
    if not block:
        raise SystemExit(f"{path} has no block between {BEGIN!r} and {END!r}: add the two lines where it belongs")
    temporary = path.with_suffix(".md.tmp")
    temporary.write_text(text.replace(block, render(record)))
    temporary.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    measuring = commands.add_parser("measure", help="run the commands and keep their times")
    measuring.add_argument("names", nargs="+", choices=list(FIGURES))
    measuring.add_argument(
        "--keep", type=Path, default=None, help="copy each run's 08_reporting folder to KEEP/<name> (its tables)"
    )
    commands.add_parser("write", help="rewrite the README's block from benchmarks/readme_figures.json")
    args = parser.parse_args()
    record = read_record()
    if args.command == "measure":
        for name in args.names:
            print(f"measuring {name}: {FIGURES[name][1]} (load {_load()}) ...", flush=True)
            record[name] = measure(name, args.keep)
            print(f"  {json.dumps(record[name])}", flush=True)
            temporary = RECORD.with_suffix(".json.tmp")
            temporary.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
            temporary.replace(RECORD)
    write_readme(record)
    print(f"README.md: {len(record)} figures from {RECORD.relative_to(PROJECT)}")


if __name__ == "__main__":
    main()
