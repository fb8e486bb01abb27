"""The detection / segmentation server: JSON boxes and masks over HTTP, and its page drawing
them on the uploaded image in a real browser (Debian's chromium through Playwright).

Two toy models whose answers are known (a 4x4-grid colour box detector, a per-pixel colour
segmenter) are exported to ONNX; the server must answer with the red block's box in the
upload's pixels, a mask PNG whose pixel value is the class, and a page whose canvas changes
where the answer is drawn. Screenshots go under pytest's tmp folder (and to
``$TORCHDOJO_SCREENSHOTS`` when set).
"""

from __future__ import annotations

import base64
import io
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
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F

from torchdojo.export.dense_exporter import export_dense_model
from torchdojo.serve import create_app

SIDE, CELLS = 64, 4
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def colour_scores(x: Tensor) -> Tensor:
    """How red and how blue each pixel is: ``(B, 2, H, W)``."""
    r, g, b = x.unbind(1)
    return torch.stack([F.relu(r - (g + b) / 2), F.relu(b - (r + g) / 2)], 1)


class BoxDetector(nn.Module):
    """One box per 16-pixel grid cell, scored by the cell's mean redness / blueness."""

    def __init__(self) -> None:
        super().__init__()
        step = SIDE // CELLS
        ys, xs = torch.meshgrid(torch.arange(CELLS), torch.arange(CELLS), indexing="ij")
        corners = torch.stack([xs, ys, xs + 1, ys + 1], -1).flatten(0, 1) * step  # (16, 4)
        self.register_buffer("cells", corners.float())

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        pooled = F.avg_pool2d(colour_scores(images), SIDE // CELLS)  # (B, 2, 4, 4)
        scores = pooled.flatten(2).transpose(1, 2)  # (B, 16, 2)
        return self.cells + 0 * scores[..., :1], scores  # (B, 16, 4), (B, 16, 2)


class ColourSegmenter(nn.Module):
    """Background unless a pixel is clearly red (1) or blue (2)."""

    def forward(self, x: Tensor) -> Tensor:
        colours = colour_scores(x)  # (B, 2, H, W)
        return torch.cat([torch.full_like(colours[:, :1], 0.3), colours], 1)  # (B, 3, H, W)


class DotPose(nn.Module):
    """Heatmaps: red = head, green = hip, blue = foot (blurred into peaks); PAFs point down."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r, g, b = x.unbind(1)
        parts = torch.stack([r - (g + b) / 2, g - (r + b) / 2, b - (r + g) / 2], 1).relu()
        for _ in range(2):
            parts = F.avg_pool2d(parts, 5, stride=1, padding=2, count_include_pad=False)
        heatmaps = torch.cat([parts, 1 - parts.amax(1, keepdim=True)], 1)  # (B, 4, H, W)
        zero, one = torch.zeros_like(r), torch.ones_like(r)
        return heatmaps, torch.stack([zero, one, zero, one], 1)  # (B, 4, H, W)


def png(
    size: tuple[int, int], red: tuple[int, int, int, int] | None = None, *, figure: bool = False
) -> bytes:
    """A grey PNG of ``size`` (width, height) with a pure red block at ``red``."""
    image = Image.new("RGB", size, (128, 128, 128))
    if red is not None:
        image.paste((255, 0, 0), red)
    if figure:  # a stick figure on x = 100: red head, green hip, blue foot
        for colour, y in (((255, 0, 0), 12), ((0, 255, 0), 47), ((0, 0, 255), 82)):
            image.paste(colour, (96, y - 4, 104, y + 4))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dense-serve")
    export_dense_model(
        BoxDetector(),
        out_dir=root / "det",
        task="detection",
        class_names=["red", "blue"],
        input_size=(3, SIDE, SIDE),
        exporter="torchscript",  # fast; the recipes' own flow exports with dynamo
    )
    export_dense_model(
        ColourSegmenter(),
        out_dir=root / "seg",
        task="segmentation",
        class_names=["background", "red", "blue"],
        input_size=(3, 32, 48),
        exporter="torchscript",
    )
    export_dense_model(
        DotPose(),
        out_dir=root / "pose",
        task="pose",
        class_names=["head", "hip", "foot"],
        input_size=(3, 64, 64),
        skeleton=[(0, 1), (1, 2)],
        exporter="torchscript",
    )
    return {"detection": root / "det", "segmentation": root / "seg", "pose": root / "pose"}


def test_detection_answers_boxes_in_upload_pixels(exports: dict[str, Path]) -> None:
    client = TestClient(create_app(exports["detection"], threads=1))
    health = client.get("/health").json()
    assert health["task"] == "detection" and health["class_names"] == ["red", "blue"]
    assert "Python" in health["nms"]
    upload = {"file": ("red.png", png((200, 100), red=(50, 0, 100, 25)), "image/png")}
    answer = client.post("/predict", files=upload)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["task"], body["width"], body["height"]) == ("detection", 200, 100)
    (box,) = body["detections"]
    assert box["label"] == "red" and box["index"] == 1 and box["score"] > 0.9
    np.testing.assert_allclose(box["box"], [50, 0, 100, 25], atol=0.01)
    lenient = client.post("/predict?score_thresh=0", files=upload).json()
    assert len(lenient["detections"]) > 1  # the threshold is the caller's
    broken = client.post("/predict", files={"file": ("x.png", b"\x89PNG no", "image/png")})
    assert broken.status_code == 400 and "could not decode 'x.png'" in broken.json()["detail"]


def test_segmentation_answers_a_png_mask_of_class_indices(exports: dict[str, Path]) -> None:
    client = TestClient(create_app(exports["segmentation"], threads=1))
    assert client.get("/health").json()["mask_encoding"].startswith("png-base64")
    upload = {"file": ("half.png", png((90, 60), red=(0, 0, 45, 60)), "image/png")}
    body = client.post("/predict", files=upload).json()
    mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["mask_png"]))))
    assert mask.shape == (60, 90) and (mask[:, :40] == 1).all() and (mask[:, 50:] == 0).all()
    assert body["pixel_counts"]["red"] == int((mask == 1).sum())
    assert body["detections"] is None


# ---------------------------------------------------------------------------------------------
# In a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def canvas_pixels(page: Any) -> np.ndarray:
    """The page's canvas as an ``(H, W, 4)`` array."""
    flat = page.evaluate(
        """() => { const c = document.getElementById('canvas');
                   return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""
    )
    height, width = page.evaluate("[canvas.height, canvas.width]")
    return np.asarray(flat, dtype=np.uint8).reshape(height, width, 4)


def save_screenshot(page: Any, path: Path) -> None:
    page.screenshot(path=str(path))
    target = os.environ.get("TORCHDOJO_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)


@pytest.mark.parametrize("task", ["detection", "segmentation", "pose"])
def test_page_draws_the_answer_on_the_upload(
    task: str,
    exports: dict[str, Path],
    browser: Any,
    serve: Callable[[object], AbstractContextManager[str]],
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    upload = png((200, 100), red=(50, 0, 100, 25))
    if task == "pose":
        upload = png((200, 100), figure=True)
    (tmp_path / "upload.png").write_bytes(upload)
    original = np.asarray(Image.open(io.BytesIO(upload)).convert("RGB"), dtype=int)
    errors: list[str] = []
    outside: list[str] = []

    def local_only(route: Any) -> None:
        if route.request.url.startswith(url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with serve(create_app(exports[task], threads=1)) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 700})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.route("**/*", local_only)
        page.goto(url + "/")
        expect(page.locator("#model")).to_contain_text(f"{task}: ")
        page.set_input_files("#file", str(tmp_path / "upload.png"))
        page.wait_for_function("document.getElementById('canvas').dataset.drawn === '1'")
        pixels = canvas_pixels(page)
        legend = page.locator("#legend li").all_text_contents()
        save_screenshot(page, tmp_path / f"dense-{task}.png")
        page.close()
    assert errors == [] and outside == []
    assert pixels.shape == (100, 200, 4)
    changed = np.abs(pixels[..., :3].astype(int) - original).sum(-1) > 20  # (100, 200)
    assert not changed[40:, 150:].any()  # far from the coloured blocks the image is untouched
    if task == "pose":
        assert changed[25:40, 98:102].any()  # the head-hip limb between y = 12 and y = 47
        assert len(legend) == 1 and legend[0].startswith("person 1")
    elif task == "detection":
        assert changed[5:25, 97:103].any()  # the box's right edge (x = 100) is drawn
        assert len(legend) == 1 and legend[0].startswith("red")
    else:
        assert changed[2:23, 52:98].all()  # the red block is tinted by the mask overlay
        assert not changed[:, :45].any()  # grey pixels are background: left as they were
        assert [row[:3] for row in legend] == ["bac", "red"]
    assert (tmp_path / f"dense-{task}.png").stat().st_size > 1000
