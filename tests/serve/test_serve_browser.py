"""The web page in a real browser: choose an image, see the prediction and probability bars.

Drives Debian's chromium through Python Playwright (never ``playwright install``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from torchdojo.serve import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright for browser tests"
)
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def page_url(
    export_dir: Path, serve: Callable[[object], AbstractContextManager[str]]
) -> Iterator[str]:
    with serve(create_app(export_dir, threads=1)) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_choosing_an_image_shows_prediction_and_bars(
    page_url: str, browser: sync_api.Browser, tmp_path: Path, make_image: Callable[..., bytes]
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
    page.close()


def test_a_corrupt_file_shows_the_servers_error(
    page_url: str, browser: sync_api.Browser, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    page = browser.new_page()
    page.goto(page_url + "/")
    page.set_input_files("#file", str(broken))
    sync_api.expect(page.locator("#error")).to_contain_text(
        "could not decode the upload as an image"
    )
    sync_api.expect(page.locator("#results li")).to_have_count(0)
    page.close()
