"""`datapool view` at scale, in Debian's chromium: how soon a page of N points is interactive.

A synthetic pool (three runs' tags plus the embedding cache's unpooled frames behind them,
clustered unit vectors of --dim) is served by the view's real app (uvicorn); chromium opens
it through Playwright with WebGL on SwiftShader, its CPU renderer (a desktop GPU is faster).
Per size it prints:
  - import_s: scikit-learn's import, once per process (the view starts it in the background when
    it launches, so a user opening the page after a few seconds does not wait for it);
  - projection_s: the server's PCA, computed once per pool version (cold, after the import);
  - grown_s: the next pool version, 10% more rows, placed with the kept fit (old points stay);
  - refit_s: the same rows fitted from scratch, which is what grown_s saves;
  - interactive_s: navigation start until the plot has drawn every point AND a hover has shown
    a point's details (projection cached, as on every load after the first);
  - hover_s, toggle_s: one hover's details, and hiding one tag's points, once interactive.
Target (issue 15): interactive within 3 s at 100,000 points, working at 1,000,000.

    .venv/bin/python bench/bench_view.py [--sizes 100000,1000000] [--dim 64]
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "view"))

from PIL import Image
from playwright.sync_api import sync_playwright
from view_support import get, launch, serving

from datapool.view.app import create_app
from datapool.view.data import UnknownDataset, ViewData
from datapool.view.projection import warm_up
from datapool.view.projection_cache import ProjectionCache

TIP_SHOWN = "(() => !document.querySelector('#tip').hidden)()"


class SyntheticSource:
    """One dataset, "bench", of `n` frames: a third pooled over three tags, the rest faint."""

    def __init__(self, n: int, dim: int, seed: int = 0) -> None:
        centres = np.random.default_rng(0).normal(size=(40, dim)).astype(np.float32)
        rng = np.random.default_rng(seed)
        vectors = centres[rng.integers(0, 40, n)] + 0.3 * rng.normal(size=(n, dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        pooled = n // 3
        tag_of = np.full(n, -1, np.int32)
        tag_of[:pooled] = np.minimum(np.arange(pooled) * 3 // pooled, 2)
        self.data = ViewData(
            version=1,
            tags=["run-1", "run-2", "run-3"],
            tag_of=tag_of,
            vectors=vectors,
            names=[f"f{i}.png" if i < pooled else "" for i in range(n)],
            keys=[f"frames/r/f{i}.png" if i < pooled else "" for i in range(n)],
            sources=[f"video-{i % 500}.mp4" for i in range(n)],
            frame_index=np.arange(n, dtype=np.int64),
        )
        out = io.BytesIO()
        Image.new("RGB", (320, 180), (90, 140, 200)).save(out, "PNG")
        self.png = out.getvalue()

    def load(self, dataset: str) -> ViewData:
        if dataset != "bench":
            raise UnknownDataset(dataset)
        return self.data

    def frame(self, dataset: str, key: str) -> tuple[bytes, str]:
        return self.png, "image/png"

    def datasets(self) -> list[str]:
        return ["bench"]


def measure(n: int, dim: int) -> dict[str, float]:
    source = SyntheticSource(n, dim)
    t = time.perf_counter()
    warm_up()
    import_s = time.perf_counter() - t
    cache = ProjectionCache()
    t = time.perf_counter()
    cache.get("bench", 1, "pca", source.data.vectors)
    projection_s = time.perf_counter() - t
    grown = np.concatenate([source.data.vectors, SyntheticSource(n // 10, dim, seed=1).data.vectors])
    t = time.perf_counter()
    cache.get("bench", 2, "pca", grown)
    grown_s = time.perf_counter() - t
    assert cache.fitted == 1
    t = time.perf_counter()
    ProjectionCache().get("bench", 2, "pca", grown)
    refit_s = time.perf_counter() - t
    with serving(create_app(source)) as url, sync_playwright() as playwright:
        browser = launch(playwright)
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        get(f"{url}/api/datasets/bench/points.bin?method=pca")  # computes and caches the projection
        t = time.perf_counter()
        page.goto(f"{url}/datasets/bench")
        page.wait_for_selector("#plot[data-ready=true]", timeout=600_000)
        page.evaluate("window.datapoolView.hover(0)")
        page.wait_for_function(TIP_SHOWN, timeout=600_000)
        interactive_s = time.perf_counter() - t
        assert page.get_attribute("#plot", "data-points") == str(n)
        page.evaluate(
            "window.datapoolView.scatterplot.hover(-1); document.querySelector('#tip').hidden = true"
        )
        t = time.perf_counter()
        page.evaluate(f"window.datapoolView.hover({n // 3 - 1})")
        page.wait_for_function(TIP_SHOWN, timeout=600_000)
        hover_s = time.perf_counter() - t
        t = time.perf_counter()
        page.click("#legend li[data-tag='run-1']")
        page.wait_for_function(f"document.querySelector('#plot').dataset.points !== '{n}'", timeout=600_000)
        toggle_s = time.perf_counter() - t
        browser.close()
    assert not errors, errors
    return {
        "import_s": import_s,
        "projection_s": projection_s,
        "grown_s": grown_s,
        "refit_s": refit_s,
        "interactive_s": interactive_s,
        "hover_s": hover_s,
        "toggle_s": toggle_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated point counts")
    parser.add_argument("--dim", type=int, default=64, help="vector width (the model's is 1280)")
    args = parser.parse_args()
    where = platform.processor() or platform.machine()
    print(f"# {where}, chromium with SwiftShader (CPU WebGL), dim {args.dim}")
    heads = ("import_s", "projection_s", "grown_s", "refit_s", "interactive_s", "hover_s", "toggle_s")
    widths = (9, 13, 8, 8, 14, 8, 9)
    print(f"{'points':>10} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True)))
    for n in (int(s) for s in args.sizes.split(",")):
        r = measure(n, args.dim)
        cells = " ".join(f"{r[h]:>{w}.2f}" for h, w in zip(heads, widths, strict=True))
        print(f"{n:>10} {cells}", flush=True)


if __name__ == "__main__":
    main()
