"""Configuration: embedded secrets generated once, production refuses unsafe settings."""

from __future__ import annotations

import json
import stat

import pytest

from privacy import config
from privacy import create_app
from tests.conftest import app_config

PRODUCTION = {
    "PRIVACY_ENV": "production",
    "PRIVACY_SECRET_KEY": "s" * 40,
    "PRIVACY_DATA_KEYS": "k1:" + "A" * 43 + "=",
    "PRIVACY_INDEX_KEY": "B" * 43 + "=",
    "PRIVACY_DATABASE_URL": "postgresql+psycopg://db.internal/privacy",
    "PRIVACY_BROKER_URL": "redis://redis.internal:6379/0",
    "PRIVACY_FORCE_HTTPS": "true",
    "PRIVACY_BASE_URL": "https://privacy.example.com",
    "PRIVACY_OPENDSR_KEY_FILE": "/etc/privacy/opendsr.key",
    "PRIVACY_OPENDSR_CERT_FILE": "/etc/privacy/opendsr.crt",
    "PRIVACY_BACKUP_URL": "s3://privacy-backups/prod",
    "PRIVACY_BACKUP_KEYS": "b1:" + "C" * 43 + "=",
}


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name, *_ in config.SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PRIVACY_INSTANCE_PATH", str(tmp_path / "instance"))

    def set_env(**values):
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_env


def test_embedded_secrets_are_generated_once_and_private(env, tmp_path):
    first = config.load(tmp_path)
    second = config.load(tmp_path)
    secrets_file = tmp_path / "instance" / "secrets.json"
    assert first["SECRET_KEY"] == second["SECRET_KEY"]
    assert first["DATA_KEYS"] == second["DATA_KEYS"]
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    assert set(json.loads(secrets_file.read_text())) == {
        "PRIVACY_SECRET_KEY",
        "PRIVACY_DATA_KEYS",
        "PRIVACY_INDEX_KEY",
    }
    assert first["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///")
    assert first["STORAGE_URL"].startswith("file:///")


def test_production_starts_with_explicit_settings(env, tmp_path):
    env(**PRODUCTION)
    loaded = config.load(tmp_path)
    assert loaded["PRODUCTION"] and loaded["LOG_FORMAT"] == "json"
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert not (tmp_path / "instance" / "secrets.json").exists()


@pytest.mark.parametrize(
    "missing", ["PRIVACY_SECRET_KEY", "PRIVACY_DATA_KEYS", "PRIVACY_INDEX_KEY"]
)
def test_production_refuses_missing_secrets(env, tmp_path, monkeypatch, missing):
    env(**PRODUCTION)
    monkeypatch.delenv(missing)
    with pytest.raises(config.ConfigError, match=missing):
        config.load(tmp_path)


@pytest.mark.parametrize(
    "override,message",
    [
        ({"PRIVACY_DATABASE_URL": "sqlite:////tmp/x.db"}, "SQLite"),
        ({"PRIVACY_DATABASE_URL": ""}, "SQLite"),
        ({"PRIVACY_FORCE_HTTPS": "false"}, "HTTPS"),
        ({"PRIVACY_BROKER_URL": ""}, "broker"),
        ({"PRIVACY_BASE_URL": ""}, "PRIVACY_BASE_URL"),
        ({"PRIVACY_OPENDSR_KEY_FILE": ""}, "OPENDSR"),
        ({"PRIVACY_BACKUP_KEYS": ""}, "PRIVACY_BACKUP_KEYS"),
        ({"PRIVACY_STORAGE_URL": "s3://privacy-backups/prod"}, "differ"),
        ({"PRIVACY_BASE_URL": "http://privacy.example.com"}, "PRIVACY_BASE_URL"),
    ],
)
def test_production_refuses_unsafe_settings(env, tmp_path, override, message):
    env(**{**PRODUCTION, **override})
    with pytest.raises(config.ConfigError, match=message):
        config.load(tmp_path)


def test_bad_values_are_clear_errors(env, tmp_path):
    env(PRIVACY_MAX_BODY_BYTES="lots")
    with pytest.raises(config.ConfigError, match="PRIVACY_MAX_BODY_BYTES"):
        config.load(tmp_path)
    env(PRIVACY_MAX_BODY_BYTES="1000", PRIVACY_ENV="staging")
    with pytest.raises(config.ConfigError, match="PRIVACY_ENV"):
        config.load(tmp_path)


def test_production_app_refuses_to_start_on_wsgi_import(env, tmp_path):
    env(PRIVACY_ENV="production")
    with pytest.raises(config.ConfigError):
        create_app()


def test_https_enforcement_redirects_and_sets_hsts(app):
    secure = create_app(app_config(FORCE_HTTPS=True))
    client = secure.test_client()
    plain = client.get("/api/v1/subjects?x=1")
    assert plain.status_code == 308
    assert plain.headers["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    tls = client.get("/healthz", base_url="https://localhost")
    assert "Strict-Transport-Security" in tls.headers
