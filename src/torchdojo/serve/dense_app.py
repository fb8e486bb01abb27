"""HTTP server for an exported detector, segmenter or pose network: an image in, boxes, a mask
or people out as JSON.

``create_dense_app(export_dir)`` serves ``POST /predict`` (multipart image upload), ``GET
/health``, offline API docs, and at ``/`` a page that draws the answer on the uploaded image
in a canvas. A detector answers ``detections``: ``{"label", "index", "score", "box": [x1, y1,
x2, y2]}`` in pixels of the uploaded image (``?score_thresh=`` sets the lowest score, 0.3 by
default). A segmenter answers ``mask_png``: the class of each pixel as an 8-bit grayscale PNG
(pixel value = class index, the size of the upload), base64-encoded, plus the pixel count of
each class. A pose network answers ``people``: per person a score and ``[x, y, score]`` per
keypoint (the card's ``class_names`` order; score 0: not found). The model runs in ONNX Runtime; NMS runs after it in Python with
``torchdojo.nn.boxes.postprocess``, as in ``torchdojo predict``, so this app imports torch (the
classifier and text apps do not). ``torchdojo.serve.create_app`` picks this app for a card
whose task is ``"detection"``, ``"segmentation"`` or ``"pose"``.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from importlib import resources
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, File, HTTPException, Query, UploadFile
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from torchdojo.export.dense import (
    DETECTION,
    DISPLAY_SCORE_THRESH,
    POSE,
    SEGMENTATION,
    DensePredictor,
    mask_png_base64,
)
from torchdojo.export.preprocess import decode_image
from torchdojo.serve.app import (
    ACCEPTED_TYPES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_UPLOAD_BYTES,
    MULTIPART_OVERHEAD,
    UploadLimits,
    _Gate,
    _undecodable,
)
from torchdojo.serve.docs import add_offline_docs
from torchdojo.viz.detection import PALETTE  # the colours torchdojo predict draws with

MASK_ENCODING = "png-base64: 8-bit grayscale PNG of the upload's size, pixel value = class index"


class Box(BaseModel):
    """One detected object."""

    label: str
    index: int = Field(description="Class label in 1..C (0 is the background).")
    score: float
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the uploaded image.")


class PersonOut(BaseModel):
    """One person: keypoints in the card's order."""

    score: float
    keypoints: list[list[float]] = Field(
        description="[x, y, score] per keypoint in pixels of the upload; score 0: not found."
    )


class DenseResponse(BaseModel):
    """What the model found in one uploaded image."""

    task: str
    width: int
    height: int
    detections: list[Box] | None = None
    mask_png: str | None = Field(default=None, description=MASK_ENCODING)
    pixel_counts: dict[str, int] | None = None
    people: list[PersonOut] | None = None
    inference_ms: float


class DenseHealthResponse(BaseModel):
    """Liveness and what the server is serving."""

    status: str
    task: str
    model_file: str
    exporter: str
    class_names: list[str]
    colors: list[list[int]] = Field(
        description="Drawing colour of class i (detection label i + 1, segmentation index i + 1)."
    )
    input_size: list[int]
    score_thresh: float | None
    mask_encoding: str | None
    nms: str | None
    skeleton: list[list[int]]
    in_flight: int
    max_concurrency: int


def create_dense_app(
    export_dir: str | Path,
    *,
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    threads: int | None = None,
) -> FastAPI:
    """Build the FastAPI app serving the detector or segmenter exported to ``export_dir``.

    Args:
        export_dir: Folder written by ``torchdojo export`` for a detection or segmentation run.
        max_upload_bytes: Largest accepted image file; bigger uploads get 413.
        max_concurrency: Inferences run at once (each in a worker thread).
        max_queue: Requests allowed to wait for a slot; beyond that the server answers 503.
        threads: ONNX Runtime intra-op threads per inference; ``None`` for its default.
    """
    if threads is not None:  # resizing and NMS run in torch, beside ONNX Runtime
        import torch

        torch.set_num_threads(threads)
    predictor = DensePredictor.from_export(export_dir, threads=threads)
    card = predictor.card
    what = {DETECTION: "object detector", POSE: "pose network"}.get(card.task, "segmenter")
    app = FastAPI(
        title="torchdojo inference server",
        description=f"{card.num_classes}-class {what} exported with {card.exporter}.",
        version="1",
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN; add_offline_docs does not
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_middleware(
        UploadLimits, path="/predict", max_body_bytes=max_upload_bytes + MULTIPART_OVERHEAD
    )
    gate = _Gate(max_concurrency=max_concurrency, max_queue=max_queue)
    _add_dense_routes(app, predictor, gate, max_upload_bytes)
    return app


def _add_dense_routes(
    app: FastAPI, predictor: DensePredictor, gate: _Gate, max_upload_bytes: int
) -> None:
    card = predictor.card
    detection = card.task == DETECTION
    page = resources.files("torchdojo.serve").joinpath("static/dense.html").read_text("utf-8")

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> DenseHealthResponse:
        return DenseHealthResponse(
            status="ok",
            task=card.task,
            model_file=card.model_file,
            exporter=card.exporter,
            class_names=list(card.class_names),
            colors=[list(c) for c in PALETTE],
            input_size=list(card.input_size),
            score_thresh=DISPLAY_SCORE_THRESH if detection else None,
            mask_encoding=MASK_ENCODING if card.task == SEGMENTATION else None,
            nms="Python, after the graph (torchdojo.nn.boxes.postprocess)" if detection else None,
            skeleton=[list(limb) for limb in card.skeleton],
            in_flight=gate.in_flight,
            max_concurrency=gate.max_concurrency,
        )

    @app.post("/predict", responses={400: {}, 413: {}, 415: {}, 503: {}})
    async def predict(
        file: Annotated[UploadFile, File(description="An image: PNG, JPEG, WebP, BMP, GIF, TIFF.")],
        score_thresh: Annotated[
            float, Query(ge=0.0, le=1.0, description="Detection: lowest score kept.")
        ] = DISPLAY_SCORE_THRESH,
    ) -> DenseResponse:
        """Find the objects (boxes) or the class of each pixel (mask) in one uploaded image."""
        content_type = (file.content_type or "").split(";")[0].strip().lower()
        if content_type not in ACCEPTED_TYPES:
            raise HTTPException(
                415, f"unsupported file type {content_type!r}; send one of {sorted(ACCEPTED_TYPES)}"
            )
        data = await file.read(max_upload_bytes + 1)
        if len(data) > max_upload_bytes:
            raise HTTPException(413, f"upload too large; the limit is {max_upload_bytes} bytes")
        async with gate.slot():
            return await run_in_threadpool(_answer, predictor, data, score_thresh, file.filename)


def _answer(
    predictor: DensePredictor, data: bytes, score_thresh: float, filename: str | None
) -> DenseResponse:
    start = time.perf_counter()
    try:
        image = decode_image(data)
    except ValueError as error:
        raise HTTPException(400, _undecodable(filename, error)) from error
    (found,) = predictor.predict([image], score_thresh=score_thresh)
    answer = DenseResponse(task=found.task, width=found.width, height=found.height, inference_ms=0)
    if found.mask is not None:
        answer.mask_png = mask_png_base64(found.mask)
        answer.pixel_counts = found.pixel_counts
    elif found.task == POSE:
        answer.people = [PersonOut(**asdict(p)) for p in found.people]
    else:
        answer.detections = [Box(**asdict(d)) for d in found.detections]
    answer.inference_ms = (time.perf_counter() - start) * 1000
    return answer
