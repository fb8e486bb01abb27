"""Fixtures for the server tests: a tiny exported color classifier, test images and a live
loopback server. The suite runs with ``--import-mode=importlib``, so helpers reach the tests as
fixtures, not imports."""

from __future__ import annotations

import io
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import torch
import uvicorn
from PIL import Image
from torch import nn

from torchdojo.export import export_model

COLORS = ("red", "green", "blue")


def color_classifier() -> nn.Module:
    """A CNN whose answer is known: the class is the brightest mean channel (R, G or B)."""
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 3, kernel_size=1, bias=False)
    head = nn.Linear(3, 3)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3).view(3, 3, 1, 1))  # identity 1x1 conv
        head.weight.copy_(4.0 * torch.eye(3))
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def image_bytes(
    color: tuple[int, int, int], *, size: tuple[int, int] = (48, 40), fmt: str = "PNG"
) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


@contextmanager
def serve_in_thread(app: object) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free 127.0.0.1 port in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(scope="session")
def class_names() -> tuple[str, ...]:
    """The labels of the color classifier."""
    return COLORS


@pytest.fixture(scope="session")
def make_image() -> Callable[..., bytes]:
    """``make_image(color, size=(48, 40), fmt="PNG")`` -> encoded bytes of a plain image."""
    return image_bytes


@pytest.fixture(scope="session")
def serve() -> Callable[[object], AbstractContextManager[str]]:
    """``with serve(app) as url:`` runs ``app`` on a free 127.0.0.1 port in a thread."""
    return serve_in_thread


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("color-export")
    export_model(
        color_classifier(),
        out_dir=out,
        input_size=(3, 32, 32),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        class_names=COLORS,
        metrics={"val_acc": 1.0},
    )
    return out
