"""Where does the far-box microstructure IoU go? (issue 19, docs/brain-maps.md section 9)

    uv run python benchmarks/diagnose_far_microstructure.py --data /tmp/d-root [--env tiny] [--no-matching]

Reads a finished run's data root (models, Task 2 test predictions, brain map) and prints, as
Markdown tables, for the mapped network:

1. its Task 2 test slices per main cube: class IoUs and class fractions (truth vs prediction),
   gray mean / std of the tissue;
2. every validation box of ``nodes.stratified_validation_boxes`` (band, area, distance): the map's
   class IoUs, class fractions in truth and map, the phantom's gray mean / std over the box's
   tissue, the same at z = 309 and the real section z = 309 at the same place
   (``--real``, default the shared sample), beside the same area's main cube footprint;
3. (unless ``--no-matching``) the network on the boxes of its training cubes' areas with the
   box's gray values moved to its area's cube test slices (mean only; mean and std), the map's
   halo and block placement kept (``nodes.map_microstructure``): how much of the gap is the
   network's response to first-order gray level.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.mapping import MappingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.pipelines.ingestion.nodes import main_cube_windows
from mtneuro.pipelines.mapping import engine, nodes
from mtneuro.pipelines.mapping.models import chosen_microstructure_run
from mtneuro.volumes import VolumeSource, Window

PROJECT = Path(__file__).resolve().parents[1]
REAL = Path("/work/shared/data/prasad2020-sample/image_z309.png")
CLASSES = ("background", "vessel", "cell", "axon")


def _catalog(data: Path, env: str | None):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    session = KedroSession.create(project_path=PROJECT, env=env, runtime_params={"data_root": str(data)})
    context = session.load_context()
    return context.catalog, context.params


class GrayMoved(VolumeSource):
    """Another source's tissue voxels (>= 40) moved linearly: ``(x - mean) * gain + target``."""

    def __init__(self, source: VolumeSource, mean: float, gain: float, target: float) -> None:
        self.source, self.mean, self.gain, self.target = source, mean, gain, target
        self.uri = f"{source.uri}#moved"
        self._shape = source.shape
        self._dtype, self._voxel_size = source.dtype, source.voxel_size

    def _read(self, window: Window) -> np.ndarray:
        x = np.asarray(self.source.read(window)).astype(np.float32)
        moved = (x - self.mean) * self.gain + self.target
        out = np.where(x >= 40, moved, x)
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _fractions(labels: np.ndarray, prefix: str) -> dict[str, float]:
    counts = np.bincount(labels.ravel().astype(np.int64), minlength=4)[:4]
    return {f"{prefix} {c[:3]} %": 100 * n / max(labels.size, 1) for c, n in zip(CLASSES, counts, strict=True)}


def _md(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT / "data")
    parser.add_argument("--env", default=None, help="Kedro environment of the run (default: base)")
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--no-matching", action="store_true")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    catalog, params = _catalog(args.data, args.env)
    mapping = MappingParameters.model_validate(params["mapping"])
    volume = VolumeParameters.model_validate(params["volume"])
    ingestion = IngestionParameters.model_validate(params["ingestion"])
    runs = catalog.load("segmentation_runs")
    run = chosen_microstructure_run(mapping, catalog.load("task2_segmentation"))
    net = runs[run]["trained_model"]
    seg = engine.MicrostructureNetwork.from_trained(net, run)
    trained = nodes.trained_areas(mapping.microstructure.setting)
    image = nodes.open_channel(volume, "image")
    roi = nodes.open_channel(volume, "roi_labels")
    dense = nodes.open_channel(volume, "pixel_labels", dense_labels=True)
    brain_map = catalog.load("brain_map")
    z0, z1, y0, y1, x0, x1 = brain_map.attributes["window_zyx"]
    window = Window(z0, z1, y0, y1, x0, x1)
    real = None
    if args.real.is_file():
        from PIL import Image

        real = np.asarray(Image.open(args.real).convert("L"))
    print(f"\nmapped network {run}; trained areas {sorted(trained)}; window {window.to_list()}")

    def real_stats(w: Window) -> dict[str, float]:
        mask = np.asarray(roi.read(Window(309, 310, w.y0, w.y1, w.x0, w.x1)))[0] != 0
        p = np.asarray(image.read(Window(309, 310, w.y0, w.y1, w.x0, w.x1)))[0][mask].astype(float)
        out = {"phantom z309 mean": p.mean(), "phantom z309 std": p.std()}
        if real is not None:
            r = real[w.y0 : w.y1, w.x0 : w.x1][mask].astype(float)
            out |= {"real z309 mean": r.mean(), "real z309 std": r.std()}
        return out

    # --- 1. the Task 2 test slices ----------------------------------------------------------
    predictions = runs[run]["test_predictions"]
    cubes = {f"main_{r}": w for r, w in main_cube_windows(ingestion).items()}
    in_cube: dict[str, dict[str, float]] = {}
    rows = []
    for cube_id in sorted(predictions):
        w = cubes[cube_id]
        z = np.asarray(predictions[cube_id]["z"])
        box = Window(w.z0 + int(z.min()), w.z0 + int(z.max()) + 1, w.y0, w.y1, w.x0, w.x1)
        truth = np.asarray(dense.read(box)).astype(np.uint8)
        pred = seg.class_values[np.asarray(predictions[cube_id]["prediction"]).astype(np.intp)]
        gray = np.asarray(image.read(box))[np.asarray(roi.read(box)) != 0].astype(float)
        area = cube_id.split("_", 1)[1]
        in_cube[area] = {"mean": gray.mean(), "std": gray.std()}
        rows.append(
            {
                "where": f"{cube_id} test slices",
                **nodes._ious(truth, pred),
                **_fractions(truth, "truth"),
                **_fractions(pred, "map"),
                "gray mean": gray.mean(),
                "gray std": gray.std(),
                **real_stats(w),
            }
        )
    print("\n## 1. The mapped network on its Task 2 test slices\n")
    print(_md(pd.DataFrame(rows)))

    # --- 2. every validation box ------------------------------------------------------------
    boxes = nodes.stratified_validation_boxes(window, nodes._training_boxes(ingestion), mapping, roi)
    micro = brain_map.layers["microstructure"][0]
    rows = []
    scored = []
    for b in boxes:
        w = b.window
        truth = np.asarray(dense.read(w)).astype(np.uint8)
        pred = np.asarray(micro[w.z0 - z0 : w.z1 - z0, w.y0 - y0 : w.y1 - y0, w.x0 - x0 : w.x1 - x0].compute()).astype(
            np.uint8
        )
        gray = np.asarray(image.read(w))[np.asarray(roi.read(w)) != 0].astype(float)
        scored.append((b, truth, pred, gray))
        rows.append(
            {
                "band": b.band,
                "area": b.area + ("" if b.area in trained else " (untrained)"),
                "distance": b.distance,
                "y0": w.y0,
                "x0": w.x0,
                **nodes._ious(truth, pred),
                **_fractions(truth, "truth"),
                **_fractions(pred, "map"),
                "gray mean": gray.mean(),
                "gray std": gray.std(),
                **real_stats(w),
            }
        )
    table = pd.DataFrame(rows).sort_values(["band", "area", "distance"])
    print("\n## 2. Validation boxes: the map against the dense truth, and the images there\n")
    print(_md(table))

    # --- 3. gray level moved to the area's cube test slices --------------------------------
    if args.no_matching:
        return
    settings = nodes.block_settings(mapping)
    rows = []
    pooled: dict[str, dict[str, list[np.ndarray]]] = {}
    for b, truth, pred, gray in scored:
        if b.area not in trained or (b.band == nodes.MID and b.area == "CTX"):
            continue
        target = in_cube[b.area]
        variants = {
            "as mapped": pred,
            "mean moved": nodes.map_microstructure(
                seg, GrayMoved(image, gray.mean(), 1.0, target["mean"]), b.window, settings
            ),
            "mean and std moved": nodes.map_microstructure(
                seg, GrayMoved(image, gray.mean(), target["std"] / gray.std(), target["mean"]), b.window, settings
            ),
        }
        for name, labels in variants.items():
            rows.append(
                {"band": b.band, "area": b.area, "distance": b.distance, "input": name, **nodes._ious(truth, labels)}
            )
            g = pooled.setdefault(f"{b.band} {b.area}: {name}", {"t": [], "p": []})
            g["t"].append(truth.ravel())
            g["p"].append(np.asarray(labels).ravel())
        print(f"box {b.band} {b.area} {b.window.to_list()} done", flush=True)
    print("\n## 3. The network with the box's gray level moved to its area's cube test slices\n")
    print(_md(pd.DataFrame(rows)))
    summary = [
        {"group": k, **nodes._ious(np.concatenate(v["t"]), np.concatenate(v["p"]))} for k, v in sorted(pooled.items())
    ]
    print("\n### pooled\n")
    print(_md(pd.DataFrame(summary)))
    print(f"\nload average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
