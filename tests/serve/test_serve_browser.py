"""The web page in a real browser: what is visible, at phone and desktop widths, before and after
an upload; plus the prediction, the probability bars and the server's error text.

Drives Debian's chromium through Python Playwright (never ``playwright install``). The layout
test saves one screenshot per width and state under pytest's tmp folder, and copies them to
``$TORCHDOJO_SCREENSHOTS`` when that variable is set.
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from torchdojo.serve import create_app
from torchdojo.serve.docs import docs_assets_dir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORTS = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 800},
}
# What a person must see, by the selector of its box; the preview and bars only after an upload.
BLOCKS_BEFORE = {"model info": "header", "drop zone": "#drop"}
BLOCKS_AFTER = {**BLOCKS_BEFORE, "preview": "#preview-box", "bars": "#results"}

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright for browser tests"
)
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)

Box = dict[str, float]


@pytest.fixture(scope="module")
def page_url(
    export_dir: Path, serve: Callable[[object], AbstractContextManager[str]]
) -> Iterator[str]:
    with serve(create_app(export_dir, threads=1)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serve-screenshots")


def box_of(page: Any, selector: str) -> Box:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not visible"
    assert box["width"] > 0 and box["height"] > 0, f"{selector} has an empty box: {box}"
    return dict(box)


def overlap(a: Box, b: Box) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


def inside(inner: Box, outer: Box, slack: float = 0.5) -> bool:
    return (
        inner["x"] >= outer["x"] - slack
        and inner["y"] >= outer["y"] - slack
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + slack
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + slack
    )


def assert_layout(page: Any, blocks: dict[str, str], viewport: dict[str, int]) -> None:
    """Each block is visible, inside the viewport, and no two blocks overlap."""
    screen: Box = {"x": 0, "y": 0, "width": viewport["width"], "height": viewport["height"]}
    boxes = {name: box_of(page, selector) for name, selector in blocks.items()}
    for name, box in boxes.items():
        assert inside(box, screen), f"{name} {box} leaves the {viewport} viewport"
    for (name_a, a), (name_b, b) in itertools.combinations(boxes.items(), 2):
        assert not overlap(a, b), f"{name_a} {a} overlaps {name_b} {b}"
    assert boxes["model info"]["y"] + boxes["model info"]["height"] <= boxes["drop zone"]["y"]
    assert page.locator("#drop").evaluate("e => getComputedStyle(e).display") in {
        "block",
        "flex",
        "grid",
    }
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= viewport["width"], "the page scrolls sideways"


def save_screenshot(page: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path))
    target = os.environ.get("TORCHDOJO_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.parametrize("width", sorted(VIEWPORTS))
def test_layout_holds_before_and_after_an_upload(
    width: str,
    page_url: str,
    browser: Any,
    screenshot_dir: Path,
    tmp_path: Path,
    make_image: Callable[..., bytes],
) -> None:
    viewport = VIEWPORTS[width]
    picture = tmp_path / "green.png"
    picture.write_bytes(make_image((10, 200, 30), size=(28, 28)))
    page = browser.new_page(viewport=viewport, is_mobile=width == "phone")
    page.goto(page_url + "/")
    sync_api.expect(page.locator("#model")).to_contain_text("3 classes")
    assert not page.locator("#result").is_visible()  # nothing to preview yet
    assert_layout(page, BLOCKS_BEFORE, viewport)
    save_screenshot(page, screenshot_dir, f"{width}-before")

    page.set_input_files("#file", str(picture))
    sync_api.expect(page.locator("#status")).to_contain_text("Prediction: green")
    sync_api.expect(page.locator("#results li")).to_have_count(3)
    page.wait_for_function("document.getElementById('preview').complete")
    assert_layout(page, BLOCKS_AFTER, viewport)
    assert inside(box_of(page, "#preview"), box_of(page, "#preview-box"))  # one box
    assert inside(box_of(page, "#drop-text"), box_of(page, "#drop"))
    for row in range(3):
        bar_row = box_of(page, f"#results li >> nth={row}")
        assert inside(bar_row, box_of(page, "#results")), f"bar row {row} leaves the list"
    save_screenshot(page, screenshot_dir, f"{width}-after")
    page.close()


def test_choosing_an_image_shows_prediction_and_bars(
    page_url: str, browser: Any, tmp_path: Path, make_image: Callable[..., bytes]
) -> None:
    picture = tmp_path / "blue.png"
    picture.write_bytes(make_image((10, 30, 220)))
    page = browser.new_page()
    page.goto(page_url + "/")
    sync_api.expect(page.locator("#model")).to_contain_text("3 classes")
    page.set_input_files("#file", str(picture))
    sync_api.expect(page.locator("#status")).to_contain_text("Prediction: blue")
    rows = page.locator("#results li")
    sync_api.expect(rows).to_have_count(3)
    assert rows.first.get_attribute("data-label") == "blue"
    probability = float(rows.first.get_attribute("data-probability") or "nan")
    assert 0.8 < probability < 1.0
    width = rows.first.locator(".bar").evaluate("bar => bar.getBoundingClientRect().width")
    track = rows.first.locator(".track").evaluate("t => t.getBoundingClientRect().width")
    assert width == pytest.approx(probability * track, rel=0.05)  # the bar is drawn to scale
    sync_api.expect(page.locator("#filename")).to_have_text("blue.png")
    page.close()


def test_a_corrupt_file_shows_the_servers_error(
    page_url: str, browser: Any, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    page = browser.new_page()
    page.goto(page_url + "/")
    page.set_input_files("#file", str(broken))
    error = page.locator("#error")
    sync_api.expect(error).to_contain_text("could not decode 'broken.png' as an image")
    assert "0x" not in (error.text_content() or "")
    sync_api.expect(page.locator("#results li")).to_have_count(0)
    assert not page.locator("#result").is_visible()  # no preview of a broken file
    page.close()


@pytest.mark.skipif(docs_assets_dir() is None, reason="pip install fastapi-offline for /docs")
@pytest.mark.parametrize(("path", "expected"), [("/docs", "/predict"), ("/redoc", "predict")])
def test_api_docs_render_with_no_network(
    path: str, expected: str, page_url: str, browser: Any
) -> None:
    page = browser.new_page()
    outside: list[str] = []

    def local_only(route: Any) -> None:
        if route.request.url.startswith(page_url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", local_only)
    page.goto(page_url + path)
    sync_api.expect(page.locator("body")).to_contain_text(expected, timeout=15_000)
    assert outside == [], f"{path} reached outside the server: {outside}"
    page.close()
