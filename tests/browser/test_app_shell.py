"""Django serves the built app at / and on client routes, and says how to build it if missing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

INDEX = '<!doctype html><html><head><script src="/static/assets/app.js"></script></head></html>'


@pytest.fixture
def built(tmp_path: Path, settings: Any) -> Path:
    (tmp_path / "index.html").write_text(INDEX)
    settings.FRONTEND_DIST_DIR = tmp_path
    return tmp_path


def test_the_root_serves_the_built_page_and_sets_the_csrf_cookie(client: Any, built: Path) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.content.decode() == INDEX
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-cache"
    assert "csrftoken" in response.cookies


@pytest.mark.parametrize("path", ["/c/abc123", "/login", "/register", "/usage"])
def test_client_routes_get_the_same_page_so_a_reload_works(
    client: Any, built: Path, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response.content.decode() == INDEX


@pytest.mark.parametrize("path", ["/api/no-such-endpoint", "/static/no-such-file.js"])
def test_server_paths_are_not_swallowed_by_the_app_fallback(
    client: Any, built: Path, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 404
    assert INDEX not in response.content.decode(errors="replace")


def test_a_missing_build_gets_a_page_that_says_how_to_build(
    client: Any, tmp_path: Path, settings: Any
) -> None:
    settings.FRONTEND_DIST_DIR = tmp_path / "missing"

    response = client.get("/")

    assert response.status_code == 503
    assert "npm run build" in response.content.decode()


def test_the_page_refuses_writes(client: Any, built: Path) -> None:
    assert client.post("/").status_code in (403, 405)
