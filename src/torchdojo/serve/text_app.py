"""HTTP server for an exported text classifier: JSON sentences in, label and attention out.

``create_text_app(export_dir)`` serves ``POST /predict`` with ``{"text": "..."}`` (one answer)
or ``{"text": ["...", "..."]}`` (a list of answers), each ``{"label", "probability", "probs",
"tokens", "attention"}``; ``GET /health``; offline API docs; and at ``/`` a page where one types
a sentence and sees the label and its tokens coloured by attention. Tokenization runs in Python
with the tokenizer saved in the export folder (``torchdojo.utils.textcodec``), the model in ONNX
Runtime: no torch. ``torchdojo.serve.create_app`` picks this app for a text export.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from torchdojo.export.text_predictor import TextOnnxPredictor
from torchdojo.serve.app import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_QUEUE, UploadLimits, _Gate
from torchdojo.serve.docs import add_offline_docs

MAX_TEXTS = 64  # texts per request
MAX_TEXT_CHARS = 10_000  # longer texts are truncated to max_length tokens anyway
MAX_BODY_BYTES = 1 * 2**20  # the JSON body: MAX_TEXTS texts of MAX_TEXT_CHARS fit


class TextRequest(BaseModel):
    """One text, or a list of texts, to classify."""

    text: str | list[str] = Field(
        description="A sentence, or a list of up to 64 sentences.",
        examples=["the plot was thin but the acting was wonderful"],
    )


class TextPredictResponse(BaseModel):
    """The answer for one text."""

    text: str
    label: str
    probability: float
    probs: dict[str, float]
    tokens: list[str]
    attention: list[float] | None
    inference_ms: float


class TextHealthResponse(BaseModel):
    """Liveness and what the server is serving."""

    status: str
    task: str
    model_file: str
    exporter: str
    num_classes: int
    class_names: list[str]
    max_length: int
    attention: bool
    in_flight: int
    max_concurrency: int


def create_text_app(
    export_dir: str | Path,
    *,
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
    max_queue: int = DEFAULT_MAX_QUEUE,
    threads: int | None = None,
) -> FastAPI:
    """Build the FastAPI app serving the text classifier exported to ``export_dir``.

    Args:
        export_dir: Folder written by ``torchdojo export`` for a text run.
        max_concurrency: Inferences run at once (each in a worker thread).
        max_queue: Requests allowed to wait for a slot; beyond that the server answers 503.
        threads: ONNX Runtime intra-op threads per inference; ``None`` for its default.
    """
    predictor = TextOnnxPredictor(export_dir, threads=threads, allow_spinning=False)
    card = predictor.card
    app = FastAPI(
        title="torchdojo inference server",
        description=f"{card.num_classes}-class text classifier exported with {card.exporter}.",
        version="1",
        docs_url=None,  # FastAPI's pages load Swagger UI from a CDN; add_offline_docs does not
        redoc_url=None,
    )
    add_offline_docs(app)
    app.add_middleware(
        UploadLimits,
        path="/predict",
        max_body_bytes=MAX_BODY_BYTES,
        content_type="application/json",
        wrong_type='send JSON: {"text": "a sentence"} with Content-Type: application/json',
        overhead=0,
    )
    _add_text_routes(app, predictor, _Gate(max_concurrency=max_concurrency, max_queue=max_queue))
    return app


def _add_text_routes(app: FastAPI, predictor: TextOnnxPredictor, gate: _Gate) -> None:
    card = predictor.card
    page = resources.files("torchdojo.serve").joinpath("static/text.html").read_text("utf-8")

    @app.api_route(
        "/", methods=["GET", "HEAD"], response_class=HTMLResponse, include_in_schema=False
    )
    async def index() -> str:
        return page

    @app.get("/health")
    async def health() -> TextHealthResponse:
        return TextHealthResponse(
            status="ok",
            task=card.task,
            model_file=card.model_file,
            exporter=card.exporter,
            num_classes=card.num_classes,
            class_names=list(card.class_names),
            max_length=card.max_length,
            attention=card.has_attention,
            in_flight=gate.in_flight,
            max_concurrency=gate.max_concurrency,
        )

    @app.post("/predict", responses={400: {}, 413: {}, 415: {}, 503: {}})
    async def predict(request: TextRequest) -> TextPredictResponse | list[TextPredictResponse]:
        """Classify a sentence (or a list): label, probabilities, tokens and their attention."""
        texts = [request.text] if isinstance(request.text, str) else request.text
        _check_texts(texts)
        async with gate.slot():
            answers = await run_in_threadpool(_classify_texts, predictor, texts)
        return answers[0] if isinstance(request.text, str) else answers


def _check_texts(texts: list[str]) -> None:
    """400 with one line for an empty request, an empty text, or too many/too long texts."""
    if not texts:
        raise HTTPException(400, 'the list of texts is empty; send {"text": ["a sentence"]}')
    if len(texts) > MAX_TEXTS:
        raise HTTPException(400, f"{len(texts)} texts in one request; send at most {MAX_TEXTS}")
    for i, text in enumerate(texts):
        where = "the text" if len(texts) == 1 else f"text {i}"
        if not text.strip():
            raise HTTPException(400, f"{where} is empty; type a sentence to classify")
        if len(text) > MAX_TEXT_CHARS:
            raise HTTPException(
                400, f"{where} has {len(text)} characters; send at most {MAX_TEXT_CHARS}"
            )


def _classify_texts(predictor: TextOnnxPredictor, texts: list[str]) -> list[TextPredictResponse]:
    start = time.perf_counter()
    predictions = predictor.predict(texts)
    elapsed_ms = (time.perf_counter() - start) * 1000
    return [
        TextPredictResponse(
            text=p.text,
            label=p.label,
            probability=p.probability,
            probs=p.probs,
            tokens=p.tokens,
            attention=p.attention,
            inference_ms=elapsed_ms,
        )
        for p in predictions
    ]
