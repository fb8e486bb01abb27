"""HTTP inference server over an export folder, with ONNX Runtime only (no torch).

``create_app(export_dir)`` serves ``POST /predict`` (multipart image upload -> top-k classes),
``GET /health``, OpenAPI docs at ``/docs`` and ``/redoc`` (assets served locally, so they work
offline) and a small web page at ``/``. Uploads are bounded (413), typed (415) and decoded
defensively (400, one line naming the file); inference runs in worker threads behind a bounded
queue (503 when full). Taught in the deployment lesson, after ``export_model``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import HTMLResponse
from PIL import UnidentifiedImageError
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from torchdojo.export.card import TEXT_TASK, card_task
from torchdojo.export.predictor import OnnxPredictor, rank
from torchdojo.export.preprocess import decode_image, preprocess_image
from torchdojo.serve.docs import add_offline_docs

logger = logging.getLogger(__name__)

DEFAULT_MAX_UPLOAD_BYTES = 10 * 2**20  # 10 MiB
DEFAULT_MAX_CONCURRENCY = 2  # inferences at once; more only oversubscribes a small CPU
DEFAULT_MAX_QUEUE = 64  # requests that may wait for a slot before we answer 503
MULTIPART_OVERHEAD = 16 * 2**10  # boundaries and part headers around the file
ACCEPTED_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/webp", "image/bmp", "image/gif", "image/tiff"}
)


# ---------------------------------------------------------------------------------------------
# Response schemas (they also document /docs)


class ClassProbability(BaseModel):
    """One ranked class."""

    label: str
    index: int
    probability: float


class PredictResponse(BaseModel):
    """Top-k classes of one uploaded image, best first."""

    predictions: list[ClassProbability]
    inference_ms: float


class HealthResponse(BaseModel):
    """Liveness and what the server is serving."""

    status: str
    model_file: str
    exporter: str
    num_classes: int
    input_size: list[int]
    in_flight: int
    max_concurrency: int


# ---------------------------------------------------------------------------------------------
# Limits


@dataclass
class _Gate:
    """At most ``max_concurrency`` inferences run; ``max_queue`` more wait; the rest get 503."""

    max_concurrency: int
    max_queue: int
    in_flight: int = 0

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.max_concurrency)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self.in_flight >= self.max_concurrency + self.max_queue:
            raise HTTPException(503, "server is busy; retry shortly", headers={"Retry-After": "1"})
        self.in_flight += 1  # one event loop thread: no lock needed
        try:
            async with self._slots:
                yield
        finally:
            self.in_flight -= 1


class UploadLimits:
    """ASGI middleware for ``POST /predict``: 415 unless multipart, 413 past ``max_body_bytes``.

    It checks ``Content-Length`` before the body is read, and counts the bytes of bodies sent
    without one, so an oversized upload is never parsed.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        path: str,
        max_body_bytes: int,
        content_type: str = "multipart/form-data",
        wrong_type: str = "send the image as multipart/form-data with a field named 'file'",
        overhead: int = MULTIPART_OVERHEAD,
    ) -> None:
        self.app = app
        self.path = path
        self.max_body_bytes = max_body_bytes
        self.content_type = content_type
        self.wrong_type = wrong_type
        self.overhead = overhead

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        error = self._check_headers(headers)
        if error is not None:
            await _send_json(send, *error)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise HTTPException(413, self._too_large())
            return message

        await self.app(scope, counting_receive, send)

    def _check_headers(self, headers: Headers) -> tuple[int, str] | None:
        if not headers.get("content-type", "").startswith(self.content_type):
            return 415, self.wrong_type
        length = headers.get("content-length")
        if length is not None and not length.isdigit():
            return 400, "invalid Content-Length header"
        if length is not None and int(length) > self.max_body_bytes:
            return 413, self._too_large()
        return None

    def _too_large(self) -> str:
        return f"upload too large; the limit is {self.max_body_bytes - self.overhead} bytes"


async def _send_json(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------------------------------------
# The app


def create_app(
    export_dir: str | Path,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    threads: int | None = None,
) -> FastAPI:
    """Build the FastAPI app serving the ONNX model of ``export_dir``.

    A text export (``card.json`` task ``"text-classification"``) gets the text app instead
    (:func:`torchdojo.serve.text_app.create_text_app`): JSON in, label and attention out.

    Args:
        export_dir: Folder written by ``export_model(..., format="onnx")``.
        max_upload_bytes: Largest accepted image file; bigger uploads get 413.
        max_concurrency: Inferences run at once (each in a worker thread).
        max_queue: Requests allowed to wait for a slot; beyond that the server answers 503.
        threads: ONNX Runtime intra-op threads per inference; ``None`` for its default.
    """
    if max_concurrency < 1 or max_queue < 0 or max_upload_bytes < 1:
        raise ValueError("max_concurrency and max_upload_bytes must be >= 1, max_queue >= 0")
    if card_task(export_dir) in ("detection", "segmentation", "pose"):  # boxes or a mask, drawn
        from torchdojo.serve.dense_app import create_dense_app

        return create_dense_app(
            export_dir,
            max_upload_bytes=max_upload_bytes,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            threads=threads,
        )
    if card_task(export_dir) == TEXT_TASK:  # sentences in: a JSON API and a text page
        from torchdojo.serve.text_app import create_text_app

        return create_text_app(
            export_dir, max_concurrency=max_concurrency, max_queue=max_queue, threads=threads
        )
    predictor = OnnxPredictor(export_dir, threads=threads, allow_spinning=False)
    gate = _Gate(max_concurrency=max_concurrency, max_queue=max_queue)
    card = predictor.card
    app = FastAPI(
        title="torchdojo inference server",
        description=f"{card.num_classes}-class image classifier exported with {card.exporter}.",
        version="1",
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN; add_offline_docs does not
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_middleware(
        UploadLimits, path="/predict", max_body_bytes=max_upload_bytes + MULTIPART_OVERHEAD
    )
    _add_routes(app, predictor=predictor, gate=gate, max_upload_bytes=max_upload_bytes)
    return app


def _add_routes(
    app: FastAPI, *, predictor: OnnxPredictor, gate: _Gate, max_upload_bytes: int
) -> None:
    card = predictor.card
    page = resources.files("torchdojo.serve").joinpath("static/index.html").read_text("utf-8")

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> HealthResponse:
        return HealthResponse(
            status="ok",
            model_file=card.model_file,
            exporter=card.exporter,
            num_classes=card.num_classes,
            input_size=list(card.input_size),
            in_flight=gate.in_flight,
            max_concurrency=gate.max_concurrency,
        )

    @app.post("/predict", responses={400: {}, 413: {}, 415: {}, 503: {}})
    async def predict(
        file: Annotated[UploadFile, File(description="An image: PNG, JPEG, WebP, BMP, GIF, TIFF.")],
        k: Annotated[int, Query(ge=1, le=100, description="How many classes to return.")] = 5,
    ) -> PredictResponse:
        """Classify one uploaded image and return its ``k`` most probable classes."""
        content_type = (file.content_type or "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_TYPES:
            raise HTTPException(
                415, f"unsupported file type {content_type!r}; send one of {sorted(ACCEPTED_TYPES)}"
            )
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"upload too large; the limit is {max_upload_bytes} bytes")
        async with gate.slot():
            return await run_in_threadpool(_classify, predictor, data, k, file.filename)


def _classify(
    predictor: OnnxPredictor, data: bytes, k: int, filename: str | None = None
) -> PredictResponse:
    start = time.perf_counter()
    try:
        image = decode_image(data)
    except ValueError as error:
        raise HTTPException(400, _undecodable(filename, error)) from error
    x = preprocess_image(image, predictor.card)  # (C, H, W)
    probs = predictor.predict(x[None])[0]  # (num_classes,)
    ranked = rank(probs, predictor.card.class_names, k=k)
    elapsed_ms = (time.perf_counter() - start) * 1000
    predictions = [
        ClassProbability(label=p.label, index=p.index, probability=p.probability) for p in ranked
    ]
    return PredictResponse(predictions=predictions, inference_ms=elapsed_ms)


_OBJECT_REPR = re.compile(r"\s*<[^<>]* at 0x[0-9a-fA-F]+>")  # Pillow names its BytesIO object
READABLE_FORMATS = "PNG, JPEG, WebP, BMP, GIF or TIFF"


def _undecodable(filename: str | None, error: ValueError) -> str:
    """One line for a 400: which upload could not be decoded, and why."""
    name = repr(filename[:100]) if filename else "the upload"
    cause = error.__cause__
    if isinstance(cause, UnidentifiedImageError):
        why = f"its bytes are not a {READABLE_FORMATS} image"
    else:
        why = _OBJECT_REPR.sub("", str(cause if cause is not None else error))
        why = " ".join(why.split()) or type(cause or error).__name__  # one line
    return f"could not decode {name} as an image: {why}"


def run_server(
    export_dir: str | Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    threads: int | None = None,
    log_level: str = "info",
    access_log: bool = True,
) -> None:
    """Serve ``export_dir`` with uvicorn until interrupted; see ``create_app`` for the options.

    Args:
        export_dir: Folder written by ``export_model(..., format="onnx")``.
        host: Interface to bind; the default only accepts local connections.
        port: TCP port.
        max_upload_bytes: Largest accepted image file.
        max_concurrency: Inferences run at once.
        max_queue: Requests allowed to wait; beyond that 503.
        threads: ONNX Runtime intra-op threads per inference.
        log_level: uvicorn's log level.
        access_log: Log one line per request.
    """
    import uvicorn  # the app itself does not need the server

    app = create_app(
        export_dir,
        max_upload_bytes=max_upload_bytes,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        threads=threads,
    )
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)
