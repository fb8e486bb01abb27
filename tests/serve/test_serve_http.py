"""The inference server over real HTTP on loopback: predictions, health, docs and every limit."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import HTTPException

import torchdojo.serve.app as serve_app
import torchdojo.serve.docs as serve_docs
from torchdojo.export import OnnxPredictor, decode_image
from torchdojo.serve import create_app
from torchdojo.serve.docs import docs_assets_dir

LIMIT = 32 * 1024


@pytest.fixture(scope="module")
def base_url(
    export_dir: Path, serve: Callable[[object], AbstractContextManager[str]]
) -> Iterator[str]:
    app = create_app(export_dir, max_upload_bytes=LIMIT, max_concurrency=2, threads=1)
    with serve(app) as url:
        yield url


def post_image(
    url: str, data: bytes, *, content_type: str = "image/png", k: int = 5
) -> httpx.Response:
    files = {"file": ("x.png", data, content_type)}
    return httpx.post(f"{url}/predict", params={"k": k}, files=files, timeout=30)


@pytest.mark.parametrize(("color", "label"), [((230, 20, 10), "red"), ((5, 200, 30), "green")])
def test_predict_returns_the_known_class(
    base_url: str,
    color: tuple[int, int, int],
    label: str,
    make_image: Callable[..., bytes],
    class_names: tuple[str, ...],
) -> None:
    response = post_image(base_url, make_image(color))
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    assert [p["label"] for p in predictions][0] == label
    assert len(predictions) == len(class_names)  # k=5 is capped at the number of classes
    probs = [p["probability"] for p in predictions]
    assert probs == sorted(probs, reverse=True)
    assert sum(probs) == pytest.approx(1.0, abs=1e-5)
    logits = 4.0 * np.asarray(color) / 255  # the classifier is 4 * mean(R, G, B)
    expected = np.sort(np.exp(logits) / np.exp(logits).sum())[::-1]
    np.testing.assert_allclose(probs, expected, atol=1e-4)


def test_predict_matches_the_in_process_predictor(
    base_url: str, export_dir: Path, make_image: Callable[..., bytes]
) -> None:
    data = make_image((120, 90, 200), size=(64, 50), fmt="JPEG")
    response = post_image(base_url, data, content_type="image/jpeg", k=2)
    assert response.status_code == 200
    expected = OnnxPredictor(export_dir, threads=1).topk(decode_image(data), k=2)
    got = response.json()["predictions"]
    assert [p["label"] for p in got] == [p.label for p in expected]
    np.testing.assert_allclose(
        [p["probability"] for p in got], [p.probability for p in expected], atol=1e-6
    )


def test_health_describes_the_model(base_url: str) -> None:
    health = httpx.get(f"{base_url}/health").json()
    assert health["status"] == "ok"
    assert health["num_classes"] == 3
    assert health["input_size"] == [3, 32, 32]
    assert health["exporter"] == "dynamo"


def test_openapi_describes_predict(base_url: str) -> None:
    schema = httpx.get(f"{base_url}/openapi.json").json()
    body = schema["paths"]["/predict"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in body


@pytest.mark.skipif(docs_assets_dir() is None, reason="pip install fastapi-offline for /docs")
@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_their_assets_from_this_server(base_url: str, path: str) -> None:
    page = httpx.get(f"{base_url}{path}")
    assert page.status_code == 200
    assert "://" not in page.text and '"//' not in page.text, page.text  # no CDN: works offline
    assert "default-src 'self'" in page.headers["content-security-policy"]  # nor its scripts
    assets = re.findall(r'(?:src|href)="(/docs-assets/[^"]+)"', page.text)
    assert assets, page.text
    for asset in assets:
        response = httpx.get(f"{base_url}{asset}")
        assert response.status_code == 200, asset
        assert len(response.content) > 1000 or asset.endswith(".png")


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_without_the_assets_package_point_to_the_schema(
    export_dir: Path,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[object], AbstractContextManager[str]],
) -> None:
    monkeypatch.setattr(serve_docs, "docs_assets_dir", lambda: None)
    with serve(create_app(export_dir, threads=1)) as url:
        page = httpx.get(f"{url}{path}")
        schema = httpx.get(f"{url}/openapi.json")
    assert page.status_code == 200
    assert "pip install fastapi-offline" in page.text
    assert 'href="/openapi.json"' in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert schema.status_code == 200


def test_head_of_the_page_is_200(base_url: str) -> None:
    response = httpx.head(f"{base_url}/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.content == b""


def test_index_page_is_self_contained(base_url: str) -> None:
    page = httpx.get(f"{base_url}/")
    assert page.status_code == 200
    assert 'type="file"' in page.text and "predict?k=" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN


def test_too_large_upload_is_413_before_parsing(base_url: str) -> None:
    response = post_image(base_url, b"\x89PNG" + bytes(LIMIT + 20_000))
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]


def test_file_just_over_the_limit_is_413(base_url: str) -> None:
    response = post_image(base_url, b"\x89PNG" + bytes(LIMIT))  # body within the slack, file not
    assert response.status_code == 413


def test_chunked_upload_without_length_is_counted(base_url: str) -> None:
    boundary = "torchdojoboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:  # a generator body is sent with chunked encoding
        yield head
        for _ in range(8):
            yield bytes(16 * 1024)
        yield f"\r\n--{boundary}--\r\n".encode()

    response = httpx.post(
        f"{base_url}/predict",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 413


def test_wrong_file_type_is_415(base_url: str) -> None:
    response = post_image(base_url, b"hello", content_type="text/plain")
    assert response.status_code == 415
    assert "image/png" in response.json()["detail"]


def test_non_multipart_body_is_415(base_url: str, make_image: Callable[..., bytes]) -> None:
    response = httpx.post(
        f"{base_url}/predict", content=make_image((1, 2, 3)), headers={"content-type": "image/png"}
    )
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


@pytest.mark.parametrize(
    ("kind", "why"),
    [("garbage", "not a PNG, JPEG, WebP, BMP, GIF or TIFF image"), ("truncated", "truncated")],
)
def test_corrupt_image_is_400_with_one_clean_line(
    base_url: str, kind: str, why: str, make_image: Callable[..., bytes]
) -> None:
    data = b"not an image at all" if kind == "garbage" else make_image((9, 9, 9))[:60]
    response = httpx.post(
        f"{base_url}/predict", files={"file": ("holiday.png", data, "image/png")}, timeout=30
    )
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail.startswith("could not decode 'holiday.png' as an image: "), detail
    assert why in detail
    assert "\n" not in detail and "0x" not in detail and "BytesIO" not in detail


def test_too_many_pixels_is_400_naming_the_limit(
    export_dir: Path,
    make_image: Callable[..., bytes],
    monkeypatch: pytest.MonkeyPatch,
    serve: Callable[[object], AbstractContextManager[str]],
) -> None:
    monkeypatch.setattr(serve_app, "decode_image", lambda data: decode_image(data, max_pixels=100))
    with serve(create_app(export_dir, threads=1)) as url:
        response = post_image(url, make_image((9, 9, 9)))
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "could not decode 'x.png' as an image: image is 48x40 pixels, more than the 100 "
        "accepted; resize it before uploading"
    )


def test_missing_file_field_is_422(base_url: str, make_image: Callable[..., bytes]) -> None:
    response = httpx.post(
        f"{base_url}/predict", files={"other": ("x.png", make_image((1, 2, 3)), "image/png")}
    )
    assert response.status_code == 422


def test_full_queue_answers_503(
    export_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    make_image: Callable[..., bytes],
    serve: Callable[[object], AbstractContextManager[str]],
) -> None:
    release = threading.Event()
    started = threading.Event()
    real_classify = serve_app._classify

    def slow_classify(*args: object) -> object:
        started.set()
        release.wait(timeout=20)
        return real_classify(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(serve_app, "_classify", slow_classify)
    app = create_app(export_dir, max_concurrency=1, max_queue=0, threads=1)
    with serve(app) as url:
        first: list[httpx.Response] = []
        worker = threading.Thread(
            target=lambda: first.append(post_image(url, make_image((200, 0, 0))))
        )
        worker.start()
        assert started.wait(timeout=20)
        busy = post_image(url, make_image((0, 200, 0)))
        release.set()
        worker.join(timeout=20)
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "1"
    assert first[0].status_code == 200
    assert first[0].json()["predictions"][0]["label"] == "red"


def test_gate_admits_concurrency_plus_queue_then_refuses() -> None:
    async def scenario() -> list[str]:
        gate = serve_app._Gate(max_concurrency=1, max_queue=1)
        outcomes: list[str] = []
        hold = asyncio.Event()

        async def request(name: str) -> None:
            try:
                async with gate.slot():
                    outcomes.append(f"{name} ran")
                    await hold.wait()
            except HTTPException as error:
                outcomes.append(f"{name} {error.status_code}")

        tasks = [asyncio.create_task(request(n)) for n in ("a", "b", "c")]
        await asyncio.sleep(0.01)
        hold.set()
        await asyncio.gather(*tasks)
        return outcomes

    assert asyncio.run(scenario()) == ["a ran", "c 503", "b ran"]


def test_bad_limits_are_refused(export_dir: Path) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        create_app(export_dir, max_concurrency=0)


def test_serve_does_not_import_torch() -> None:
    # the text server's tokenizer (utils.textcodec) included: utils loads torch lazily
    code = (
        "import sys, torchdojo.serve, torchdojo.serve.text_app, torchdojo.utils.textcodec; "
        "sys.exit(int('torch' in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
