"""The soak app, the official way: ``uvicorn bench.apps.official_soak:app``
(FLET_UPLOAD_DIR and FLET_SECRET_KEY set by bench/soak.py)."""

import os

import flet_web.fastapi as flet_fastapi
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bench.apps.soak import SESSION_TIMEOUT, main, stats

app = flet_fastapi.app(
    main,
    no_cdn=True,
    upload_dir=os.environ["FLET_UPLOAD_DIR"],
    upload_endpoint_path="upload",  # "/upload" would route "//upload"
    secret_key=os.environ["FLET_SECRET_KEY"],
    session_timeout_seconds=SESSION_TIMEOUT,
)


async def soak_stats(request: Request) -> JSONResponse:
    return JSONResponse(stats())


# first: the static files are mounted at "/" and would answer it otherwise
app.router.routes.insert(0, Route("/soak-stats", soak_stats))
