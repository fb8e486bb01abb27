"""API docs that work offline: Swagger UI at ``/docs`` and ReDoc at ``/redoc``, from local files.

FastAPI's own docs pages load their JavaScript from a CDN, so without a network they are blank.
Here the assets come from the ``fastapi-offline`` package (MIT; it bundles Swagger UI, Apache-2.0,
and ReDoc, MIT) and are served by the app itself. Without that package both pages say how to get
it and link to the machine-readable schema at ``/openapi.json``.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_URL = "/docs-assets"
ASSETS_PACKAGE = "fastapi-offline"
# The pages may load nothing from elsewhere: ReDoc's footer, for one, fetches a logo from its CDN.
SAME_ORIGIN_ONLY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:"
)


def docs_assets_dir() -> Path | None:
    """The folder holding ``swagger-ui-bundle.js`` and friends, or None when not installed."""
    spec = importlib.util.find_spec("fastapi_offline")  # finds the package without importing it
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "static"
    needed = ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")
    return folder if all((folder / name).is_file() for name in needed) else None


def add_offline_docs(app: FastAPI, *, assets: Path | None = None) -> None:
    """Serve ``/docs`` and ``/redoc`` for ``app`` (built with ``docs_url=None, redoc_url=None``).

    Args:
        app: The application; its ``openapi_url`` must be set.
        assets: The asset folder; defaults to :func:`docs_assets_dir`.
    """
    assets = assets or docs_assets_dir()
    openapi_url = app.openapi_url or "/openapi.json"
    if assets is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")

    @app.api_route("/docs", methods=["GET", "HEAD"], include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if assets is None:
            return _missing_assets_page(app.title, root + openapi_url)
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # the online validator badge
        )
        page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
        return page

    @app.api_route("/redoc", methods=["GET", "HEAD"], include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if assets is None:
            return _missing_assets_page(app.title, root + openapi_url)
        page = get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = SAME_ORIGIN_ONLY
        return page


def _missing_assets_page(title: str, openapi_url: str) -> HTMLResponse:
    url = html.escape(openapi_url)
    body = f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{html.escape(title)} - API docs</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>API docs are not installed</h1>
<p>The interactive docs need the <code>{ASSETS_PACKAGE}</code> package, which ships Swagger UI
and ReDoc for use without a network: <code>pip install {ASSETS_PACKAGE}</code>, then restart
the server.</p>
<p>The API schema is available now at <a href="{url}">{url}</a> (OpenAPI JSON).</p>
</body>
</html>
"""
    return HTMLResponse(body)
