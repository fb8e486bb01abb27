"""The documentation site in a real browser, served from its folder on 127.0.0.1.

Drives Debian's chromium through Python Playwright (never ``playwright install``), as the serve
page's test does. Every page opened must load nothing from another host, log no console error
and show every image. Screenshots go under pytest's tmp folder (and to
``$TORCHDOJO_SCREENSHOTS`` when that variable is set).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from torchdojo.services.docs_site import SiteReport, serve_folder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LESSON = "07_training_stability"

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="pip install playwright for browser tests"
)
if not shutil.which(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)


@pytest.fixture(scope="module")
def base_url(site: SiteReport) -> Iterator[str]:
    server = serve_folder(site.out, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("docs-screenshots")


class Visit:
    """A page that records console errors, uncaught exceptions and requests to other hosts."""

    def __init__(self, browser: Any, base_url: str) -> None:
        self.page = browser.new_page(viewport={"width": 1280, "height": 860})
        self.base_url = base_url
        self.errors: list[str] = []
        self.outside: list[str] = []
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.route("**/*", self._route)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text}")

    def _route(self, route: Any) -> None:
        if route.request.url.startswith(self.base_url):
            route.continue_()
        else:
            self.outside.append(route.request.url)
            route.abort()

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base_url + path, wait_until="networkidle")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        return self.page

    def check(self) -> None:
        """No console error, no request outside the site, every image decoded."""
        broken = self.page.evaluate(
            "[...document.images].filter(i => !i.complete || i.naturalWidth === 0)"
            ".map(i => i.getAttribute('src'))"
        )
        assert broken == [], f"{self.page.url}: broken images {broken}"
        assert self.errors == [], f"{self.page.url}: {self.errors}"
        assert self.outside == [], f"{self.page.url} reached other hosts: {self.outside}"

    def shot(self, folder: Path, name: str, *, full_page: bool = False) -> None:
        path = folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        target = os.environ.get("TORCHDOJO_SCREENSHOTS")
        if target:
            Path(target).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(target) / path.name)


@pytest.fixture
def visit(browser: Any, base_url: str) -> Iterator[Visit]:
    opened = Visit(browser, base_url)
    yield opened
    opened.page.close()


def test_home_page(visit: Visit, shots: Path) -> None:
    page = visit.open("/")
    sync_api.expect(page.locator("h1")).to_contain_text("torchdojo")
    sync_api.expect(page.locator("nav.md-nav--primary")).to_contain_text("Recipes")
    visit.check()
    visit.shot(shots, "home")


def test_lesson_page_shows_its_figures(visit: Visit, shots: Path) -> None:
    page = visit.open(f"/lessons/{LESSON}/")
    sync_api.expect(page.locator("h1")).to_contain_text("Training stability")
    sync_api.expect(page.locator(".admonition").first).to_contain_text("Smoke run")
    figures = page.locator("article img")
    assert figures.count() >= 3, "lesson 07 draws several figures"
    for index in range(figures.count()):
        figures.nth(index).scroll_into_view_if_needed()  # lazy images load too
    visit.check()
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(500)  # the header's title swaps with a transition on scroll
    visit.shot(shots, "lesson-top")
    figures.nth(1).scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    visit.shot(shots, "lesson-figure")


def test_recipe_page(visit: Visit, shots: Path) -> None:
    page = visit.open("/recipes/mnist-cnn/")
    article = page.locator("article")
    sync_api.expect(article).to_contain_text("Expected metrics")
    sync_api.expect(article).to_contain_text("MNIST (official 60k/10k split)")
    sync_api.expect(article.locator("table").nth(1)).to_contain_text("label_smoothing")
    visit.check()
    visit.shot(shots, "recipe")


def _column(page: Any, index: int) -> list[str]:
    cells = page.locator(f".sortable table tbody tr td:nth-child({index + 1})")
    return [text.strip() for text in cells.all_inner_texts()]


def test_recipe_table_sorts_by_a_click(visit: Visit, shots: Path) -> None:
    page = visit.open("/recipes/")
    headers = page.locator(".sortable table thead th")
    names = [text.strip() for text in headers.all_inner_texts()]
    expected_col, recipe_col = names.index("expected"), names.index("recipe")
    headers.nth(expected_col).click()
    cells = _column(page, expected_col)
    numbers = [c for c in cells if c != "—"]  # a recipe without a floor shows a dash
    assert cells == numbers + ["—"] * (len(cells) - len(numbers)), "numbers first, then dashes"
    values = [float(re.findall(r"\d[\d.e+-]*", c)[0]) for c in numbers]
    assert values == sorted(values) and len(values) >= 10
    headers.nth(recipe_col).click()
    headers.nth(recipe_col).click()  # a second click sorts descending
    recipes = _column(page, recipe_col)
    assert recipes == sorted(recipes, reverse=True)
    visit.check()
    visit.shot(shots, "recipe-table")


def test_search_finds_batchnorm_in_lesson_07(visit: Visit, shots: Path) -> None:
    page = visit.open("/")
    page.locator("input.md-search__input").click()
    page.keyboard.type("BatchNorm", delay=20)  # material searches as keys are typed
    results = page.locator(".md-search-result__item")
    sync_api.expect(results.first).to_be_visible(timeout=15_000)
    links = page.locator(".md-search-result__link")
    hrefs = [links.nth(i).get_attribute("href") or "" for i in range(links.count())]
    assert any(f"lessons/{LESSON}/" in href for href in hrefs), hrefs
    visit.check()
    visit.shot(shots, "search")
