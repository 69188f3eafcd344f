"""Production refuses unsafe settings (privacy.md "Logs and data at rest")."""

from __future__ import annotations

import pytest

from backend import create_app
from backend.config import Config


@pytest.fixture
def production_env(monkeypatch):
    monkeypatch.setenv("BRIDGELINE_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 48)
    monkeypatch.setenv("AUDIT_HMAC_KEY", "k" * 48)
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bridgeline.example.org")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app@db/bridgeline")
    return monkeypatch


def test_production_starts_with_safe_settings(production_env):
    Config().validate()


def test_production_refuses_the_default_secret_key(production_env):
    production_env.delenv("SECRET_KEY")
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app()


def test_production_refuses_the_default_audit_key(production_env):
    production_env.delenv("AUDIT_HMAC_KEY")
    with pytest.raises(RuntimeError, match="AUDIT_HMAC_KEY"):
        create_app()


def test_production_refuses_plain_http(production_env):
    production_env.setenv("PUBLIC_BASE_URL", "http://bridgeline.example.org")
    with pytest.raises(RuntimeError, match="https"):
        create_app()


def test_a_malformed_number_setting_is_named(monkeypatch):
    monkeypatch.setenv("LOGIN_MAX_FAILURES", "five")
    with pytest.raises(RuntimeError, match="LOGIN_MAX_FAILURES"):
        Config()


def test_production_serves_only_https_and_says_so(production_env, tmp_path):
    production_env.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/prod.db")
    client = create_app().test_client()
    refused = client.get("/api/v1/me", base_url="http://bridgeline.internal")
    assert refused.status_code == 403 and refused.get_json()["detail"] == "Use HTTPS."
    assert client.get("/health", base_url="http://bridgeline.internal").status_code == 200  # platform probes
    over_https = client.get("/api/v1/me", base_url="https://bridgeline.example.org")
    assert over_https.status_code == 401
    assert over_https.headers["Strict-Transport-Security"].startswith("max-age=")


def test_no_response_may_be_cached(client):
    assert client.get("/health").headers["Cache-Control"] == "no-store"


def test_texting_settings_that_could_misfire_refuse_to_start(monkeypatch):
    monkeypatch.setenv("SMS_SEND_TIMEOUT_SECONDS", "60")  # a slow batch would outlive the stale limit
    with pytest.raises(RuntimeError, match="SMS_SENDING_STALE_SECONDS"):
        Config().validate()
    monkeypatch.delenv("SMS_SEND_TIMEOUT_SECONDS")
    monkeypatch.setenv("SMS_SEND_WINDOW_START", "21:00")
    with pytest.raises(RuntimeError, match="SMS_SEND_WINDOW_START"):
        Config().validate()
    monkeypatch.delenv("SMS_SEND_WINDOW_START")
    monkeypatch.setenv("SMS_BACKEND", "twilio")  # without credentials
    with pytest.raises(RuntimeError, match="TWILIO_ACCOUNT_SID"):
        Config().validate()
    monkeypatch.setenv("SMS_CHECK_IN_DAYS", "1,three")
    with pytest.raises(RuntimeError, match="SMS_CHECK_IN_DAYS"):
        Config()


def test_secrets_come_from_files_as_containers_and_systemd_provide_them(production_env, tmp_path):
    key_file, token_file = tmp_path / "secret_key", tmp_path / "twilio_token"
    key_file.write_text("s" * 48 + "\n")
    token_file.write_text("twilio-token-from-a-file")
    production_env.delenv("SECRET_KEY")
    production_env.setenv("SECRET_KEY_FILE", str(key_file))
    production_env.setenv("TWILIO_AUTH_TOKEN_FILE", str(token_file))
    config = Config()
    config.validate()
    assert (config.SECRET_KEY, config.TWILIO_AUTH_TOKEN) == ("s" * 48, "twilio-token-from-a-file")


def test_a_secret_given_twice_or_from_a_missing_or_empty_file_stops_the_start(production_env, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    production_env.setenv("SECRET_KEY_FILE", str(empty))
    with pytest.raises(RuntimeError, match="not both"):  # SECRET_KEY is set too
        Config()
    production_env.delenv("SECRET_KEY")
    with pytest.raises(RuntimeError, match="empty file"):
        Config()
    production_env.setenv("SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match="cannot be read"):
        Config()
