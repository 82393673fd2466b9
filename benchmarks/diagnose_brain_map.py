"""Why is the brain map wrong far from the training cubes? (issue 19.1; docs/brain-maps.md)

    uv run python benchmarks/diagnose_brain_map.py [--data data] [--figure docs/brain-maps-inputs.png]

Reads a finished default run under ``--data`` (the models, the brain map, the cubes) and prints,
as Markdown tables:

1. the network's inputs: the exact Task 2 preprocessing (uint8 / 255, standardised with the
   training mean and std; no resampling in either path, 1.17 um voxels) applied to the main
   cubes' test slices and to the far validation boxes, over tissue and non-tissue voxels;
2. the map path against the Task 2 test predictions of the same network on the same slices
   (``nodes.compare_with_task2``);
3. the phantom far from the cubes against the main cubes: dense-truth class fractions and gray
   values per brain area;
4. the microstructure IoU of the map in the store on the far boxes: all voxels, tissue voxels
   only, per brain area (``--all-boxes``: the boxes as chosen before the tissue criterion);
5. (``--by-distance``) the map's IoU on every tissue box of the slab (8 middle slices) by brain
   area and distance from the nearest main cube (0: inside a cube's footprint, i.e. its
   training slices), beside the Task 2 test IoU of each main cube: what distance costs within
   one area, and what another area costs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from mtneuro import spec
from mtneuro.config.ingestion import IngestionParameters
from mtneuro.config.mapping import MappingParameters
from mtneuro.config.volume import VolumeParameters
from mtneuro.pipelines.ingestion.nodes import main_cube_windows
from mtneuro.pipelines.mapping import engine, nodes
from mtneuro.pipelines.mapping.models import chosen_microstructure_run
from mtneuro.pipelines.segmentation.engine import normalise
from mtneuro.volumes import Window

PROJECT = Path(__file__).resolve().parents[1]
AREA_NAMES = {v: k for k, v in spec.BRAIN_AREA_VALUES.items()}


def _catalog(data: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    session = KedroSession.create(project_path=PROJECT, runtime_params={"data_root": str(data)})
    context = session.load_context()
    return context.catalog, context.params


def _stats(values: np.ndarray) -> dict[str, float]:
    if not values.size:
        return {"voxels": 0}
    return {
        "voxels": int(values.size),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "p1": float(np.percentile(values, 1)),
        "p99": float(np.percentile(values, 99)),
    }


def _md(frame: pd.DataFrame) -> str:
    return frame.to_markdown(index=False, floatfmt=".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=PROJECT / "data")
    parser.add_argument("--figure", type=Path, default=PROJECT / "docs" / "brain-maps-inputs.png")
    parser.add_argument("--all-boxes", action="store_true", help="far boxes without the tissue criterion")
    parser.add_argument("--by-distance", action="store_true", help="IoU by area and distance from the cubes")
    args = parser.parse_args()
    print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    catalog, params = _catalog(args.data)
    mapping = MappingParameters.model_validate(params["mapping"])
    volume = VolumeParameters.model_validate(params["volume"])
    ingestion = IngestionParameters.model_validate(params["ingestion"])
    table = catalog.load("task2_segmentation")
    runs = catalog.load("segmentation_runs")
    run = chosen_microstructure_run(mapping, table)
    net = runs[run]["trained_model"]
    seg = engine.MicrostructureNetwork.from_trained(net, run)
    print(f"\nmapped network {run}: training mean {seg.mean:.4f}, std {seg.std:.4f} (of uint8 / 255)")
    image = nodes.open_channel(volume, "image")
    roi = nodes.open_channel(volume, "roi_labels")
    dense = nodes.open_channel(volume, "pixel_labels", dense_labels=True)
    brain_map = catalog.load("brain_map")
    z0, z1, y0, y1, x0, x1 = brain_map.attributes["window_zyx"]
    window = Window(z0, z1, y0, y1, x0, x1)

    # --- 1. inputs --------------------------------------------------------------------------
    predictions = runs[run]["test_predictions"]
    cube_windows = {f"main_{r}": w for r, w in main_cube_windows(ingestion).items()}
    samples: dict[str, dict[str, np.ndarray]] = {}
    rows = []
    for cube_id in sorted(predictions):
        w = cube_windows[cube_id]
        z = np.asarray(predictions[cube_id]["z"])
        box = Window(w.z0 + int(z.min()), w.z0 + int(z.max()) + 1, w.y0, w.y1, w.x0, w.x1)
        samples[f"{cube_id} test slices"] = {
            "image": image.read(box),
            "roi": roi.read(box),
            "truth": dense.read(box).astype(np.uint8),
        }
    check = mapping
    if args.all_boxes:
        check = MappingParameters.model_validate(
            {
                **mapping.model_dump(mode="json"),
                "validation": {**mapping.validation.model_dump(), "min_tissue_fraction": 0.0},
            }
        )
    boxes = nodes.validation_boxes(window, nodes._training_boxes(ingestion), check, roi)
    for box in boxes:
        values = roi.read(box)
        tissue = values != 0
        area = AREA_NAMES[int(np.bincount(values[tissue].astype(np.int64)).argmax())] if tissue.any() else "outside"
        key = f"far {area}"
        entry = {"image": image.read(box), "roi": values, "truth": dense.read(box).astype(np.uint8)}
        entry["map"] = np.asarray(
            brain_map.layers["microstructure"][0][
                box.z0 - window.z0 : box.z1 - window.z0,
                box.y0 - window.y0 : box.y1 - window.y0,
                box.x0 - window.x0 : box.x1 - window.x0,
            ].compute()
        )
        if key in samples:
            for k in entry:
                samples[key][k] = np.concatenate([samples[key][k].ravel(), entry[k].ravel()])
        else:
            samples[key] = {k: v.ravel() for k, v in entry.items()}
    for key, s in samples.items():
        x = normalise(s["image"], seg.mean, seg.std).ravel()
        tissue = s["roi"].ravel() != 0
        rows.append(
            {
                "where": key,
                "tissue fraction": float(tissue.mean()),
                **{f"tissue {k}": v for k, v in _stats(x[tissue]).items()},
            }
        )
        if (~tissue).any():
            rows.append(
                {"where": f"{key}: outside tissue", **{f"tissue {k}": v for k, v in _stats(x[~tissue]).items()}}
            )
    print("\n## 1. Network inputs (standardised gray values; voxel size 1.17 um in both paths)\n")
    print(_md(pd.DataFrame(rows)))

    # --- 2. the map path against Task 2 --------------------------------------------------
    print("\n## 2. Map path vs Task 2 test predictions (same network, same slices)\n")
    agreement = nodes.compare_with_task2(net, {"run": run, "predictions": predictions}, mapping, volume, ingestion)
    print(_md(agreement[["metric", "class", "value"]]))

    # --- 3. phantom statistics -----------------------------------------------------------
    rows = []
    for key, s in samples.items():
        tissue = s["roi"].ravel() != 0
        truth = s["truth"].ravel()[tissue]
        gray = s["image"].ravel()[tissue].astype(np.float64)
        fractions = np.bincount(truth, minlength=4) / max(truth.size, 1)
        rows.append(
            {
                "where": key,
                **{f"{spec.PIXEL_CLASSES[i]} %": 100 * fractions[i] for i in range(4)},
                "gray mean": gray.mean() if gray.size else np.nan,
                "gray std": gray.std() if gray.size else np.nan,
            }
        )
    print("\n## 3. Phantom in tissue: dense-truth class fractions and gray values\n")
    print(_md(pd.DataFrame(rows)))

    # --- 4. IoU of the stored map on the far boxes ----------------------------------------
    rows = []
    for key, s in samples.items():
        if "map" not in s:
            continue
        tissue = s["roi"].ravel() != 0
        all_iou = nodes._ious(s["truth"].ravel(), s["map"].ravel())
        tissue_iou = nodes._ious(s["truth"].ravel()[tissue], s["map"].ravel()[tissue])
        outside = s["map"].ravel()[~tissue]
        rows.append(
            {
                "where": key,
                "tissue fraction": float(tissue.mean()),
                "mean IoU (all voxels)": all_iou["mean"],
                "vessel IoU (all)": all_iou["vessel"],
                "mean IoU (tissue)": tissue_iou["mean"],
                **{f"{n} (tissue)": tissue_iou[n] for n in ("background", "vessel", "cell", "axon")},
                "outside tissue labelled vessel": float((outside == spec.VESSEL).mean()) if outside.size else np.nan,
            }
        )
    print("\n## 4. Microstructure IoU of the stored map on the far boxes\n")
    print(_md(pd.DataFrame(rows)))

    if args.by_distance:
        by_distance(brain_map, window, ingestion, roi, dense, predictions, cube_windows, seg)

    # --- figure -----------------------------------------------------------------------------
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.2), constrained_layout=True)
    bins = np.linspace(-6, 4, 81)
    for key, s in samples.items():
        x = normalise(s["image"], seg.mean, seg.std).ravel()
        tissue = s["roi"].ravel() != 0
        ax.hist(x[tissue], bins=bins, density=True, histtype="step", label=f"{key} (tissue)")
        if key.startswith("far") and (~tissue).any():
            ax.hist(x[~tissue], bins=bins, density=True, histtype="step", linestyle=":", label=f"{key} (outside)")
    ax.set_xlabel("network input (standardised gray value)")
    ax.set_ylabel("density")
    ax.legend(fontsize=6, ncol=2)
    args.figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.figure, dpi=90)
    print(f"\nfigure: {args.figure}")


def by_distance(brain_map, window, ingestion, roi, dense, predictions, cube_windows, seg) -> None:
    rows = []
    for cube_id in sorted(predictions):
        w = cube_windows[cube_id]
        z = np.asarray(predictions[cube_id]["z"])
        box = Window(w.z0 + int(z.min()), w.z0 + int(z.max()) + 1, w.y0, w.y1, w.x0, w.x1)
        truth = dense.read(box).astype(np.uint8)
        pred = seg.class_values[np.asarray(predictions[cube_id]["prediction"]).astype(np.intp)]
        rows.append(
            {"area": cube_id.split("_")[1], "distance": "Task 2 test slices", "boxes": 1, **nodes._ious(truth, pred)}
        )
    training = nodes._training_boxes(ingestion)
    zc = (window.z0 + window.z1) // 2
    z0, z1 = max(window.z0, zc - 4), min(window.z1, zc + 4)
    groups: dict[tuple[str, str], tuple[list, list]] = {}
    for y0 in range(window.y0, window.y1 - 255, 256):
        for x0 in range(window.x0, window.x1 - 255, 256):
            box = Window(z0, z1, y0, y0 + 256, x0, x0 + 256)
            values = roi.read(Window(zc, zc + 1, y0, y0 + 256, x0, x0 + 256))[0][::8, ::8]
            if (values != 0).mean() < 0.9:
                continue
            area = AREA_NAMES[int(np.bincount(values[values != 0].astype(np.int64)).argmax())]
            d = min(nodes.box_distance(box, t) for t in training)
            band = "0 (cube footprint)" if d == 0 else "1-250" if d <= 250 else "251-500" if d <= 500 else ">500"
            truth = dense.read(box).astype(np.uint8).ravel()
            pred = np.asarray(
                brain_map.layers["microstructure"][0][
                    z0 - window.z0 : z1 - window.z0,
                    y0 - window.y0 : y0 + 256 - window.y0,
                    x0 - window.x0 : x0 + 256 - window.x0,
                ].compute()
            ).ravel()
            g = groups.setdefault((area, band), ([], []))
            g[0].append(truth)
            g[1].append(pred)
    for (area, band), (t, p) in sorted(groups.items()):
        rows.append(
            {"area": area, "distance": band, "boxes": len(t), **nodes._ious(np.concatenate(t), np.concatenate(p))}
        )
    print("\n## 5. Microstructure IoU by brain area and distance from the nearest main cube (tissue boxes)\n")
    print(_md(pd.DataFrame(rows)))


if __name__ == "__main__":
    main()
