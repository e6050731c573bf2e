"""The view's own credential: a random token in the address `datapool view` prints, as Jupyter does.

Serving on loopback alone let any local user, or any web page open in the user's browser (a
page can make it fetch 127.0.0.1, and DNS rebinding can read the answers), read the pool
through the view. Every request now needs the token: in the address (`?token=`, which also
sets a cookie, so that the page's own requests, images and links carry it), in that cookie, or
as `Authorization: Bearer`. The cookie is per port (cookies ignore ports) and HttpOnly.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse

TOKEN_ENV = "DATAPOOL_VIEW_TOKEN"
REFUSED = (
    "this view needs the token that `datapool view` printed with its address "
    "(http://127.0.0.1:PORT/?token=...): open that address"
)


def cookie_name(request: Request) -> str:
    return f"datapool_view_{request.url.port or 80}"


def _matches(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def require_token(app: FastAPI, token: str) -> None:
    """Refuses every request to `app` that does not carry `token` (401, saying where it is)."""
    if not token:
        raise ValueError("the view's token must not be empty")

    @app.middleware("http")
    async def _check(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        in_url = request.query_params.get("token")
        auth = request.headers.get("authorization", "")
        bearer = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        if _matches(in_url, token):
            response = await call_next(request)
            response.set_cookie(cookie_name(request), token, httponly=True, samesite="strict")
            return response
        if _matches(request.cookies.get(cookie_name(request)), token) or _matches(bearer, token):
            return await call_next(request)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": REFUSED}, 401)
        return HTMLResponse(f"<!doctype html><title>datapool view</title><p>{REFUSED}</p>", 401)
