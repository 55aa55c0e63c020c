"""The latent explorer web app: FastAPI routes over :class:`latentlab.web.explorer.Explorer`.

``create_app(run_dir)`` loads the run once and returns an ASGI app that ``latentlab serve``
runs with uvicorn. Routes only parse, call and answer:

=========================  ==========================================================
``GET /``                  the page (``static/index.html``); ``/static/app.js``, ``/static/style.css``
``GET /api/info``          model, latent size, typical ranges, ranking of elements
``GET /api/image/{i}``     dataset image i: latent, original, reconstruction, anomaly score
``GET /api/thumb/{i}``     dataset image i as stored, PNG
``POST /api/upload``       a PNG/JPEG (multipart field ``file``): same answer as ``/api/image``
``POST /api/decode``       ``{"z": [...]}`` -> PNG bytes: the slider fast path
``POST /api/describe``     ``{"z_ref": [...], "z": [...]}`` -> measured description of the change
``POST /api/sample``       ``{"seed": n}`` -> a random latent (prior for a VAE, fitted Gaussian for an AE)
``POST /api/edit``         ``{"z": [...], "edits": "z[3]=1.25;z[7]+=0.4"}`` -> the edited latent
=========================  ==========================================================

Safety: no route takes a file path (static files are three fixed names read from the package at
startup); bodies over ``max_body`` bytes are answered 413, a file that is not a PNG/JPEG 400,
latents that are not finite or far outside their typical range 422.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, File, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from latentlab.allocator import release_free_memory
from latentlab.errors import LatentlabError
from latentlab.web.explorer import EDIT_MAX_LENGTH, STATS_LIMIT, Explorer

MAX_BODY = 5 * 1024 * 1024  # bytes: the upload limit (and a cap on every request body)
MAX_LATENT = 1 << 16  # values in one latent list; the model's own size is checked after parsing
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

Finite = Annotated[float, Field(allow_inf_nan=False, strict=True)]
Latent = Annotated[list[Finite], Field(max_length=MAX_LATENT)]

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DecodeBody(_Body):
    z: Latent


class DescribeBody(_Body):
    z_ref: Latent
    z: Latent


class SampleBody(_Body):
    seed: int = Field(0, ge=0, le=2**63 - 1, strict=True)


class EditBody(_Body):
    z: Latent
    edits: str = Field(max_length=EDIT_MAX_LENGTH)


# ------------------------------------------------------------------------------------ body limit


class BodyLimit:
    """ASGI middleware: 413 for a body over ``limit`` bytes, by its Content-Length or as it streams in."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await JSONResponse(self._detail(), status_code=413)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI re-raises an HTTPException from body parsing
                raise HTTPException(413, self._detail()["detail"])
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> dict[str, str]:
        return {"detail": f"request body: larger than the limit of {self.limit / 2**20:.0f} MB"}


# ------------------------------------------------------------------------------------ app


def _static(name: str) -> str:
    return resources.files("latentlab.web").joinpath("static").joinpath(name).read_text(encoding="utf-8")


def _unprocessable(exc: LatentlabError) -> HTTPException:
    return HTTPException(422, str(exc))


async def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line per problem, never echoing the input (it may be NaN, or megabytes)."""
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
                for e in exc.errors()[:5]]
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


def create_app(run_dir: str | Path, data_spec: str | None = None, *, stats_limit: int = STATS_LIMIT,
               factors: bool = True, max_body: int = MAX_BODY) -> FastAPI:
    """Load the run in ``run_dir`` once (read-only) and return the explorer's ASGI app.

    ``data_spec`` picks the images to explore (default: the run's training data); the first
    ``stats_limit`` of them are encoded for ranges, ranking and anomaly percentiles. A bad run
    folder or data spec raises LatentlabError before anything listens.
    """
    explorer = Explorer.load(run_dir, data_spec, stats_limit=stats_limit, factors=factors)
    release_free_memory()  # loading encoded and scored a whole set; requests need little of that
    pages = {name: _static(name) for name in ("index.html", *STATIC)}
    api = FastAPI(title="latentlab explorer", docs_url=None, redoc_url=None, openapi_url=None)
    api.state.explorer = explorer
    api.add_exception_handler(RequestValidationError, _invalid_request)  # type: ignore[arg-type]
    headers = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff"}

    @api.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(pages["index.html"], headers=headers)

    @api.get("/static/app.js")
    def app_js() -> Response:
        return Response(pages["app.js"], media_type=STATIC["app.js"], headers=headers)

    @api.get("/static/style.css")
    def style_css() -> Response:
        return Response(pages["style.css"], media_type=STATIC["style.css"], headers=headers)

    @api.get("/api/info")
    def info() -> dict[str, Any]:
        return explorer.info()

    @api.get("/api/image/{index}")
    def image(index: int) -> dict[str, Any]:
        try:
            return explorer.image_view(index)
        except LatentlabError as exc:
            raise HTTPException(404, str(exc)) from None

    @api.get("/api/thumb/{index}")
    def thumb(index: int) -> Response:
        try:
            png = explorer.thumbnail_png(index)
        except LatentlabError as exc:
            raise HTTPException(404, str(exc)) from None
        return Response(png, media_type="image/png", headers={"Cache-Control": "max-age=3600"})

    @api.post("/api/upload")
    def upload(file: Annotated[UploadFile, File()]) -> dict[str, Any]:
        data = file.file.read(max_body + 1)
        if len(data) > max_body:
            raise HTTPException(413, f"upload: larger than the limit of {max_body / 2**20:.0f} MB")
        try:
            return explorer.upload_view(data, file.filename or "image")
        except LatentlabError as exc:
            raise HTTPException(400, str(exc)) from None

    @api.post("/api/decode")
    async def decode(body: DecodeBody) -> Response:
        """Async: the event loop waits on the decode worker, no thread per request."""
        start = time.perf_counter()
        try:
            z = explorer.check_latent(body.z)
        except LatentlabError as exc:
            raise _unprocessable(exc) from None
        png = await asyncio.wrap_future(explorer.decode_png(z))
        ms = (time.perf_counter() - start) * 1000
        return Response(png, media_type="image/png",
                        headers={"Cache-Control": "no-store", "Server-Timing": f"decode;dur={ms:.2f}"})

    @api.post("/api/describe")
    def describe(body: DescribeBody) -> dict[str, Any]:
        try:
            z_ref, z = explorer.check_latent(body.z_ref, "z_ref"), explorer.check_latent(body.z)
        except LatentlabError as exc:
            raise _unprocessable(exc) from None
        return {"description": explorer.describe(z_ref, z)}

    @api.post("/api/sample")
    def sample(body: SampleBody) -> dict[str, Any]:
        z = explorer.sample(body.seed)
        return {"z": z[0].tolist(), "source": explorer.sample_source}

    @api.post("/api/edit")
    def edit(body: EditBody) -> dict[str, Any]:
        try:
            z = explorer.apply_edit(explorer.check_latent(body.z), body.edits)
            explorer.check_latent(z[0].tolist(), "edited z")
        except LatentlabError as exc:
            raise _unprocessable(exc) from None
        return {"z": z[0].tolist()}

    api.add_middleware(BodyLimit, limit=max_body)
    return api
