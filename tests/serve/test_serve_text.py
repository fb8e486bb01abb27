"""The server over a text export: JSON in, label, probabilities, tokens and attention out; the
limits; and the text page in a real browser (type a sentence, click, see the coloured tokens).

Drives Debian's chromium through Python Playwright (never ``playwright install``); screenshots
go under pytest's tmp folder and to ``$TORCHDOJO_SCREENSHOTS`` when that variable is set.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from torchdojo.data.text import build_codec, tiny_sentiment
from torchdojo.export import export_text_model
from torchdojo.models import create_model
from torchdojo.serve import create_app
from torchdojo.utils.textcodec import TextCodec

CLASSES = ["negative", "positive"]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
needs_browser = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"{CHROMIUM} is absent: apt-get install -y chromium"
)


@pytest.fixture(scope="module")
def text_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """A small text Transformer (with attention) exported with its word tokenizer."""
    texts = tiny_sentiment(seed=0, n_train=120, n_test=10).train_texts
    codec = build_codec("word", texts, vocab_size=120, max_length=24)
    torch.manual_seed(0)
    model = create_model(
        "text-transformer", vocab_size=codec.vocab_size, dim=16, depth=1, heads=2, max_length=24
    ).eval()
    out = tmp_path_factory.mktemp("text-export")
    export_text_model(model, out_dir=out, codec=codec, class_names=CLASSES, exporter="torchscript")
    return model, out


@pytest.fixture(scope="module")
def client(text_export: tuple[torch.nn.Module, Path]) -> TestClient:
    return TestClient(create_app(text_export[1], threads=1))


def test_one_text_gives_label_probs_tokens_and_attention(
    client: TestClient, text_export: tuple[torch.nn.Module, Path]
) -> None:
    response = client.post("/predict", json={"text": "the food was great"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokens"] == ["[CLS]", "the", "food", "was", "great"]
    assert set(body["probs"]) == set(CLASSES) and body["label"] in CLASSES
    assert body["probability"] == max(body["probs"].values())
    assert sum(body["attention"]) == pytest.approx(1.0, abs=1e-4)
    model = text_export[0]
    batch = TextCodec.load(text_export[1]).encode(["the food was great"])
    x = (torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    with torch.no_grad():
        probs = model(*x).softmax(1)[0].numpy()
        weights = model.token_attention(*x)[0].numpy()
    np.testing.assert_allclose([body["probs"][c] for c in CLASSES], probs, atol=1e-5)
    np.testing.assert_allclose(body["attention"], weights, atol=1e-5)


def test_a_list_of_texts_gives_a_list_in_order(client: TestClient) -> None:
    texts = ["dull", "the staff was lovely but the food was not good", "great"]
    response = client.post("/predict", json={"text": texts})
    assert response.status_code == 200
    answers = response.json()
    assert [a["text"] for a in answers] == texts
    assert [len(a["tokens"]) for a in answers] == [2, 11, 2]
    assert all(len(a["attention"]) == len(a["tokens"]) for a in answers)
    alone = client.post("/predict", json={"text": texts[1]}).json()  # padding changes nothing
    np.testing.assert_allclose(alone["attention"], answers[1]["attention"], atol=1e-5)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "   "}, 400, "the text is empty"),
        ({"text": []}, 400, "the list of texts is empty"),
        ({"text": ["ok", ""]}, 400, "text 1 is empty"),
        ({"text": ["a"] * 65}, 400, "send at most 64"),
        ({"text": "x" * 10_001}, 400, "send at most 10000"),
        ({"sentence": "hi"}, 422, "Field required"),
    ],
)
def test_bad_requests_say_what_to_send(
    client: TestClient, body: dict[str, Any], status: int, message: str
) -> None:
    response = client.post("/predict", json=body)
    assert response.status_code == status and message in response.text


def test_non_json_and_oversized_bodies_are_refused(client: TestClient) -> None:
    form = client.post("/predict", data={"text": "hi"})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    huge = b'{"text": "' + b"a" * (2 * 2**20) + b'"}'
    too_big = client.post("/predict", content=huge, headers={"content-type": "application/json"})
    assert too_big.status_code == 413


def test_health_and_page_describe_a_text_model(client: TestClient) -> None:
    health = client.get("/health").json()
    assert health["task"] == "text-classification" and health["attention"] is True
    assert health["class_names"] == CLASSES and health["max_length"] == 24
    page = client.get("/").text
    assert "<textarea" in page and 'for="text"' in page
    assert "http://" not in page and "https://" not in page  # no CDN: works offline


# ---------------------------------------------------------------------------------------------
# The page in a real browser


@pytest.fixture(scope="module")
def page_url(
    text_export: tuple[torch.nn.Module, Path],
    serve: Callable[[object], AbstractContextManager[str]],
) -> Iterator[str]:
    with serve(create_app(text_export[1], threads=1)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def save_screenshot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("TORCHDOJO_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


@needs_browser
@pytest.mark.parametrize("width", [390, 1280])
def test_typing_a_sentence_shows_the_label_and_coloured_tokens(
    width: int, page_url: str, browser: Any, client: TestClient, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    sentence = "the food was great but the service was slow"
    page = browser.new_page(viewport={"width": width, "height": 800}, is_mobile=width < 500)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(page_url + "/")
    expect(page.locator("#model")).to_contain_text("2 classes (negative, positive)")
    assert not page.locator("#result").is_visible()
    page.get_by_label("Sentence to classify").fill(sentence)
    page.get_by_role("button", name="Classify").click()
    expected = client.post("/predict", json={"text": sentence}).json()
    expect(page.locator("#label")).to_have_text(expected["label"])
    expect(page.locator("#status")).to_contain_text(f"Prediction: {expected['label']}")
    tokens = page.locator("#tokens .token")
    expect(tokens).to_have_count(len(expected["tokens"]))
    assert tokens.nth(2).text_content() == "food"
    colours = tokens.evaluate_all("spans => spans.map(s => getComputedStyle(s).backgroundColor)")
    alphas = [float(c.rstrip(")").split(",")[3]) if c.count(",") == 3 else 1.0 for c in colours]
    weights = np.asarray(expected["attention"])
    np.testing.assert_allclose(alphas, 0.75 * weights / weights.max(), atol=6e-3)  # by weight
    assert all(c.startswith("rgb") and "255, 0, 0" in c for c in colours)
    expect(page.locator("#results li")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scroll
    save_screenshot(page, tmp_path.parent, f"text-page-{width}")
    assert errors == [], errors
    page.close()


@needs_browser
def test_empty_text_and_keyboard_submit(page_url: str, browser: Any) -> None:
    from playwright.sync_api import expect

    page = browser.new_page()
    page.goto(page_url + "/")
    page.get_by_role("button", name="Classify").click()
    expect(page.locator("#error")).to_have_text("Error: type a sentence first.")
    page.get_by_label("Sentence to classify").fill("dull")
    page.get_by_label("Sentence to classify").press("Control+Enter")
    expect(page.locator("#tokens .token")).to_have_count(2)
    expect(page.locator("#error")).to_be_empty()
    page.close()
