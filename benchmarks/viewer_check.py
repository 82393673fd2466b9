"""Does the brain map open in the viewers the README names? (issue 19.6; docs/brain-maps.md §7)

    uv run --with neuroglancer python benchmarks/viewer_check.py neuroglancer [--data data]
    uv run --with "napari[pyqt5]" --with napari-ome-zarr python benchmarks/viewer_check.py napari

``neuroglancer`` serves ``<data>/07_model_output`` with CORS headers (what the README's
``npx http-server --cors`` does), opens the run's own state file
(``brain_map.neuroglancer.json``) in the client the PyPI ``neuroglancer`` package ships, and
takes a screenshot in headless Chromium (swiftshader WebGL) once per label layer, each shown on
its own. It prints, per layer, the fraction of the data's footprint in the view that the layer colours and the
fraction of the store's voxels with a non-zero label: a layer that did not load colours nothing.

``napari`` opens the store with the napari-ome-zarr reader, as the README's
``napari --plugin napari-ome-zarr`` does, offscreen (``QT_QPA_PLATFORM=offscreen``), and prints
the layers it made: name, kind, shape and, for labels, the values and colours it took.

Screenshots go to ``--out`` (default ``/tmp/mtneuro-viewer-check``). Nothing here downloads at
run time: the viewers come from the package registry through ``uv run --with``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np


class _CorsHandler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        super().end_headers()

    def log_message(self, *args: Any) -> None:  # quiet: Neuroglancer probes many absent keys
        pass


def _serve(folder: Path, port: int) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_CorsHandler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _store_label_fraction(store: Path, layer: str) -> float:
    import zarr

    labels = zarr.open_group(str(store), mode="r")[f"labels/{layer}/0"][...]
    return float(np.count_nonzero(labels)) / labels.size


def check_neuroglancer(data: Path, out: Path, port: int, wait_s: float) -> list[dict[str, Any]]:
    import neuroglancer as ng
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    model_output = data / "07_model_output"
    state = json.loads((model_output / "brain_map.neuroglancer.json").read_text())
    server = _serve(model_output, port)
    ng.set_server_bind_address("127.0.0.1", port + 80)
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--window-size=1400,900",
                "--enable-unsafe-swiftshader", "--use-angle=swiftshader"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options)
    rows = []
    try:
        layers = [layer["name"] for layer in state["layers"] if layer["type"] == "segmentation"]
        for shown in layers:
            for layer in state["layers"]:
                if layer["type"] == "segmentation":
                    layer["visible"] = layer["name"] == shown
            viewer = ng.Viewer()
            viewer.set_state(ng.ViewerState(state))
            driver.get(str(viewer))
            time.sleep(wait_s)
            shot = out / f"neuroglancer-{shown}.png"
            driver.save_screenshot(str(shot))
            pixels = np.asarray(Image.open(shot).convert("RGB")).astype(int)[60:740, :1090]
            # The data's footprint: pixels unlike the panel's empty background (its bottom-right corner).
            footprint = np.abs(pixels - pixels[-5, -5]).max(-1) > 8
            coloured_mask = (pixels.max(-1) - pixels.min(-1)) > 40
            coloured = float(coloured_mask[footprint].mean()) if footprint.any() else 0.0
            rows.append({
                "layer": shown,
                "coloured_fraction_of_footprint": round(coloured, 4),
                "labelled_voxel_fraction": round(
                    _store_label_fraction(model_output / "brain_map.ome.zarr", shown), 4
                ),
                "screenshot": str(shot),
            })  # fmt: skip
    finally:
        driver.quit()
        server.shutdown()
    return rows


def check_napari(data: Path, out: Path) -> list[dict[str, Any]]:
    if not os.environ.get("DISPLAY"):  # no X server: offscreen Qt (needs an OpenGL driver)
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    import napari

    store = data / "07_model_output" / "brain_map.ome.zarr"
    viewer = napari.Viewer(show=bool(os.environ.get("DISPLAY")))  # a hidden canvas draws black
    layers = viewer.open(str(store), plugin="napari-ome-zarr")
    rows = []
    for layer in layers:
        row: dict[str, Any] = {
            "layer": layer.name,
            "kind": type(layer).__name__,
            "visible": bool(layer.visible),
            "opacity": round(float(layer.opacity), 2),
            "shape": list(layer.data[0].shape if layer.multiscale else layer.data.shape),
        }
        if type(layer).__name__ == "Labels":
            base = np.asarray(layer.data[0] if layer.multiscale else layer.data)
            row["values"] = sorted(int(v) for v in np.unique(base))
            row["features"] = list(getattr(layer, "features", {}).keys())
        rows.append(row)
    viewer.reset_view()
    viewer.screenshot(str(out / "napari.png"), canvas_only=True)
    # The reader opens label layers hidden; show each on its own, as a user ticking its eye.
    labels = [layer for layer in layers if type(layer).__name__ == "Labels"]
    for shown in labels:
        for layer in labels:
            layer.visible = layer is shown
        name = shown.name.rsplit("/", 1)[-1]
        shot = viewer.screenshot(str(out / f"napari-{name}.png"), canvas_only=True)
        coloured = (shot[..., :3].max(-1).astype(int) - shot[..., :3].min(-1)) > 40
        next(r for r in rows if r["layer"] == shown.name)["coloured_canvas_fraction"] = round(float(coloured.mean()), 4)
    viewer.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("viewer", choices=["neuroglancer", "napari"])
    parser.add_argument("--data", type=Path, default=Path("data"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/mtneuro-viewer-check"))
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--wait", type=float, default=40.0, help="seconds per screenshot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.viewer == "neuroglancer":
        rows = check_neuroglancer(args.data, args.out, args.port, args.wait)
    else:
        rows = check_napari(args.data, args.out)
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
