"""The view's HTTP server (FastAPI): pages, the points as binary columns, hover details,
thumbnails and frames. Every route is a GET: no endpoint of the view changes the pool.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import Image

from datapool.client_models import ApiError
from datapool.view.access import require_token
from datapool.view.data import UnknownDataset, ViewData, ViewSource
from datapool.view.legend import legend
from datapool.view.pages import index_page, message_page, plot_page
from datapool.view.projection import METHODS, warm_up
from datapool.view.projection_cache import ProjectionCache

BUNDLE = Path(__file__).parent / "static" / "dist" / "view.js"
THUMBNAIL_PX = 224
# How long points.bin waits for a projection before answering 202 "computing" (the page polls).
PROJECTION_WAIT_S = 5.0


def create_app(
    source: ViewSource, default_dataset: str | None = None, access_token: str | None = None
) -> FastAPI:
    """The view's app; with `access_token`, every request must carry it (datapool/view/access.py)."""
    app = FastAPI(title="datapool view", docs_url=None, redoc_url=None, openapi_url=None)
    if access_token is not None:
        require_token(app, access_token)
    projections = ProjectionCache()
    app.state.projections = projections  # tests and the bench read its counters
    # scikit-learn's import takes seconds: start it now, while the user opens the browser.
    threading.Thread(target=warm_up, name="view-sklearn-import", daemon=True).start()
    loaded: dict[str, ViewData] = {}
    lock = threading.Lock()

    def data(name: str, fresh: bool = False) -> ViewData:
        with lock:
            current = None if fresh else loaded.get(name)
        if current is None:
            try:
                current = source.load(name)
            except UnknownDataset:
                raise HTTPException(404, f"dataset {name!r} not found") from None
            with lock:
                loaded[name] = current
        return current

    def checked(method: str) -> str:
        if method not in METHODS:
            raise HTTPException(400, f"method must be one of {', '.join(METHODS)}, got {method!r}")
        return method

    @app.exception_handler(HTTPException)
    async def _errors(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, exc.status_code)
        title = "not found" if exc.status_code == 404 else "error"
        return HTMLResponse(message_page(title, str(exc.detail)), exc.status_code)

    @app.exception_handler(ApiError)
    async def _scheduler_errors(request: Request, exc: ApiError) -> Response:
        # The scheduler refused (a token, TLS) or is down: say so, as a page or as JSON.
        detail = f"the scheduler answered {exc}"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, 502)
        return HTMLResponse(message_page("the scheduler refused", detail), 502)

    @app.get("/", response_model=None)
    def index() -> Response:
        if default_dataset:
            return RedirectResponse(f"/datasets/{default_dataset}")
        return HTMLResponse(index_page(source.datasets()))

    @app.get("/datasets/{name}", response_class=HTMLResponse)
    def page(name: str, method: str = "pca") -> str:
        view = data(name, fresh=True)
        if view.pooled == 0:
            why = f" ({view.note})" if view.note else ""
            return message_page(name, f"dataset {name!r} has no pool yet{why}: run it first")
        if view.pooled == 1:
            return message_page(name, f"the pool of {name!r} holds one frame: nothing to compare it with yet")
        return plot_page(name, checked(method), METHODS, describe(view, method))

    def describe(view: ViewData, method: str) -> dict[str, object]:
        return {"version": view.version, "method": checked(method), "total": len(view.tag_of), **legend(view)}

    @app.get("/api/datasets/{name}/meta")
    def meta(name: str, method: str = "pca") -> dict[str, object]:
        return describe(data(name), method)

    @app.get("/api/datasets/{name}/points.bin")
    def points(name: str, method: str = "pca") -> Response:
        """x, y (float32), row (uint32), category (uint8), n of each, in draw order: the faint
        background first so pooled points stay on top; `row` maps a drawn point back."""
        view = data(name)
        xy = projections.get(
            name, view.version, checked(method), view.vectors, view.frame_ids, wait_s=PROJECTION_WAIT_S
        )
        if xy is None:
            # UMAP's and t-SNE's fits take longer than a request should hang: the page asks again.
            seconds = projections.computing_for(name, view.version, method, len(view.vectors))
            return JSONResponse({"computing": method, "seconds": round(seconds, 1)}, 202)
        cat = np.where(view.tag_of >= 0, view.tag_of, len(view.tags)).astype(np.uint8)
        order = np.argsort(view.tag_of >= 0, kind="stable").astype(np.uint32)
        body = xy[order, 0].tobytes() + xy[order, 1].tobytes() + order.tobytes() + cat[order].tobytes()
        return Response(body, media_type="application/octet-stream")

    def row(view: ViewData, i: int) -> int:
        if not 0 <= i < len(view.tag_of):
            raise HTTPException(404, f"point {i} is not in the view (0..{len(view.tag_of) - 1})")
        return i

    @app.get("/api/datasets/{name}/points/{i}")
    def point(name: str, i: int) -> dict[str, object]:
        view = data(name)
        i, pooled = row(view, i), bool(view.tag_of[i] >= 0)
        d = view.nearest_pool_distance(i)
        api = f"/api/datasets/{name}/points/{i}"
        return {
            "name": view.names[i],
            "video": view.sources[i],
            "frame_index": int(view.frame_index[i]),
            "tag": view.tags[view.tag_of[i]] if pooled else "",
            "nearest_pool_distance": None if d is None else round(d, 4),
            "thumbnail": f"{api}/thumbnail" if pooled else None,
            "frame": f"{api}/frame" if pooled else None,
        }

    def image(name: str, i: int) -> tuple[bytes, str]:
        view = data(name)
        if view.tag_of[row(view, i)] < 0:
            raise HTTPException(404, f"point {i} is not pooled, so no frame of it was written")
        return source.frame(name, view.keys[i])

    @app.get("/api/datasets/{name}/points/{i}/frame")
    def frame(name: str, i: int) -> Response:
        body, content_type = image(name, i)
        return Response(body, media_type=content_type)

    @app.get("/api/datasets/{name}/points/{i}/thumbnail")
    def thumbnail(name: str, i: int, px: int = Query(THUMBNAIL_PX, ge=16, le=1024)) -> Response:
        with Image.open(io.BytesIO(image(name, i)[0])) as im:
            im.thumbnail((px, px))
            out = io.BytesIO()
            im.convert("RGB").save(out, "JPEG", quality=85)
        return Response(out.getvalue(), media_type="image/jpeg")

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/view.js")
    def bundle() -> FileResponse:
        if not BUNDLE.exists():
            raise HTTPException(
                404, f"{BUNDLE} is missing: run scripts/setup.sh (it bundles the view with npm)"
            )
        return FileResponse(BUNDLE, media_type="text/javascript")

    return app
