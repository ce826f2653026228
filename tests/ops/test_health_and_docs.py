"""/v1/health is liveness only; /v1/ready checks the database, its migrations and Redis;
the docs page loads only files the app serves itself."""
from __future__ import annotations

import re

from settlement.config import Settings
from settlement.migrate import upgrade

DEAD_PG = "postgresql://postgres@127.0.0.1:1/nothing"  # nothing listens on port 1
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _app(**settings):
    from api import create_app
    return create_app(Settings(**settings)).test_client()


def test_health_answers_ok_even_when_the_database_is_down():
    client = _app(database_url=DEAD_PG)
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_is_503_naming_the_database_when_it_is_down():
    response = _app(database_url=DEAD_PG).get("/v1/ready")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    checks = response.get_json()["checks"]
    assert checks["database"].startswith("OperationalError")
    assert checks["migrations"] == "not checked"


def test_ready_is_ok_on_a_migrated_database_without_redis(db_url):
    response = _app(database_url=db_url).get("/v1/ready")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["checks"] == {"database": "ok", "migrations": "ok",
                                             "redis": "not used"}


def test_ready_checks_redis_when_jobs_go_to_rq(sqlite_url, redis_url):
    assert _app(database_url=sqlite_url, redis_url=redis_url).get(
        "/v1/ready").get_json()["checks"]["redis"] == "ok"
    response = _app(database_url=sqlite_url, redis_url=DEAD_REDIS).get("/v1/ready")
    assert response.status_code == 503
    assert "ConnectionError" in response.get_json()["checks"]["redis"]


def test_ready_is_503_when_migrations_are_behind_the_code(tmp_path):
    url = f"sqlite:///{tmp_path / 'behind.sqlite3'}"
    upgrade(url, "0012")
    response = _app(database_url=url).get("/v1/ready")
    assert response.status_code == 503
    assert "settle db upgrade" in response.get_json()["checks"]["migrations"]


def test_docs_page_loads_only_assets_the_app_serves(sqlite_url):
    client = _app(database_url=sqlite_url)
    page = client.get("/v1/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(urls) == 3  # the stylesheet and the two scripts
    for url in urls:
        assert url.startswith("/v1/docs/assets/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert len(asset.get_data()) > 1000
    assert "cdn" not in html.lower()


def test_docs_assets_serve_nothing_but_swagger_ui_files(sqlite_url):
    client = _app(database_url=sqlite_url)
    assert client.get("/v1/docs/assets/index.html").status_code == 404
    assert client.get("/v1/docs/assets/..%2Fpyproject.toml").status_code == 404
