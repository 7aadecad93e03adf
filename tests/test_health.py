"""Liveness, readiness (database, broker, storage) and the OpenAPI document."""

from __future__ import annotations

from privacy import create_app
from tests.conftest import app_config
from tests.helpers import free_port


def test_healthz_is_public_and_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["X-Request-ID"]


def test_readyz_reports_each_part(app, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.json
    assert response.json["checks"] == {"database": "ok", "broker": "ok", "storage": "ok"}


def test_readyz_is_503_naming_what_is_unreachable(app):
    port = free_port()  # nothing listens there
    broken = create_app(
        app_config(
            CELERY={"broker_url": f"redis://127.0.0.1:{port}/0", "broker_connection_timeout": 1},
            STORAGE_URL="s3://bucket/prefix",
            S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        )
    )
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.json
    assert body["code"] == 503
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("unavailable")
    assert body["checks"]["storage"].startswith("unavailable")
    assert "broker" in body["message"] and "storage" in body["message"]


def test_request_id_is_taken_from_the_caller_when_well_formed(client):
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    odd = client.get("/healthz", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert odd != "<script>" and len(odd) == 32


def test_openapi_document_lists_the_api(app, client):
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/subjects" in spec["paths"]
    assert "/api/v1/subjects/lookup" in spec["paths"]
    assert "bearerAuth" in spec["components"]["securitySchemes"]


def test_swagger_ui_is_served_without_a_cdn(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
