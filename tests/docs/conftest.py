"""The documentation site built once per test session: every page, one lesson executed.

A whole build executes every lesson (minutes); the tests build the complete site around one
lesson, ``07_training_stability`` (figures, and the BatchNorm the search test looks for), in
smoke mode. `torchdojo docs` in CI builds everything.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mkdocs", reason='pip install "torchdojo[docs]" for the docs tests')
pytest.importorskip("material", reason='pip install "torchdojo[docs]" for the docs tests')
pytest.importorskip("jupytext", reason='pip install "torchdojo[docs]" for the docs tests')

from torchdojo.cli.cmd_docs import cli_reference  # noqa: E402
from torchdojo.services.docs_site import SiteOptions, SiteReport, build_site  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TEST_LESSON = "07_training_stability"


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> SiteReport:
    """The site with one lesson, built strictly (a warning would have raised)."""
    folder = tmp_path_factory.mktemp("docs")
    options = SiteOptions(
        root=ROOT,
        out=folder / "site",
        src=folder / "site_src",
        cache=folder / "cache",
        lessons=(TEST_LESSON,),
        cli_reference=cli_reference(),
    )
    return build_site(options)
