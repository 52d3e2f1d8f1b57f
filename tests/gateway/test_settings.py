"""Settings come from Dittofeed's variable names, default to an embedded install, and refuse values
they cannot use with a message naming the variable."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.settings import DEFAULT_BODY_LIMIT, Settings, SettingsError


def _read(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_environ({"FEEDGATE_DATA_DIR": str(tmp_path), **env})


def test_defaults_are_embedded_in_the_data_dir(tmp_path: Path) -> None:
    settings = _read(tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path / 'feedgate.db'}"
    assert settings.clickhouse_url == f"chdb://{tmp_path / 'chdb'}"
    assert settings.embedded_events
    assert (settings.auth_mode, settings.api_body_limit) == ("anonymous", DEFAULT_BODY_LIMIT)


def test_anonymous_mode_keeps_one_generated_secret_key(tmp_path: Path) -> None:
    first, second = _read(tmp_path), _read(tmp_path)
    assert len(first.secret_key) >= 32
    assert first.secret_key == second.secret_key
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_dittofeed_database_and_clickhouse_variables(tmp_path: Path) -> None:
    settings = _read(
        tmp_path,
        DATABASE_HOST="db",
        DATABASE_PORT="5433",
        DATABASE_USER="u",
        DATABASE_PASSWORD="p@ss",
        DATABASE_NAME="df",
        CLICKHOUSE_HOST="http://clickhouse-server:8123",
        CLICKHOUSE_USER="dittofeed",
        CLICKHOUSE_PASSWORD="pw",
    )
    assert settings.database_url == "postgresql+psycopg://u:p%40ss@db:5433/df"
    assert settings.clickhouse_url == "http://clickhouse-server:8123"
    assert (settings.clickhouse_user, settings.clickhouse_password) == ("dittofeed", "pw")
    assert not settings.embedded_events


def test_database_url_wins_and_is_normalised(tmp_path: Path) -> None:
    settings = _read(tmp_path, DATABASE_URL="postgres://x@h/db", DATABASE_HOST="ignored")
    assert settings.database_url == "postgresql+psycopg://x@h/db"


def test_open_id_variables(tmp_path: Path) -> None:
    settings = _read(
        tmp_path,
        AUTH_MODE="multi-tenant",
        SECRET_KEY="s",
        AUTH_PROVIDER="keycloak",
        OPEN_ID_CLIENT_ID="cid",
        OPEN_ID_CLIENT_SECRET="csecret",
        OPEN_ID_ISSUER="https://idp/realms/x",
        OPEN_ID_RETURN_TO_QUERY_PARAM="post_logout_redirect_uri",
        DASHBOARD_URL="https://app.example/",
    )
    assert settings.open_id.provider == "keycloak"
    assert (settings.open_id.client_id, settings.open_id.issuer) == ("cid", "https://idp/realms/x")
    assert settings.dashboard_url == "https://app.example"


def test_secrets_stay_out_of_repr(tmp_path: Path) -> None:
    settings = _read(
        tmp_path,
        SECRET_KEY="top-secret-key",
        PASSWORD="hunter2",
        OPEN_ID_CLIENT_SECRET="oidc-secret",
        DATABASE_URL="postgresql://u:dbpass@h/db",
        CLICKHOUSE_PASSWORD="chpass",
    )
    text = repr(settings)
    for secret in ("top-secret-key", "hunter2", "oidc-secret", "dbpass", "chpass"):
        assert secret not in text


def test_settings_are_frozen(tmp_path: Path) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        _read(tmp_path).auth_mode = "multi-tenant"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AUTH_MODE": "open-sesame"}, "AUTH_MODE"),
        ({"AUTH_MODE": "single-tenant", "SECRET_KEY": "s"}, "PASSWORD"),
        ({"AUTH_MODE": "multi-tenant"}, "SECRET_KEY"),
        ({"AUTH_MODE": "multi-tenant", "SECRET_KEY": "s", "OPEN_ID_CLIENT_ID": "c"}, "OPEN_ID_ISSUER"),
        ({"API_BODY_LIMIT": "lots"}, "API_BODY_LIMIT"),
        ({"API_BODY_LIMIT": "10"}, "API_BODY_LIMIT"),
        ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE"),
        ({"DATABASE_URL": "mysql://h/db"}, "DATABASE_URL"),
        ({"CLICKHOUSE_URL": "tcp://h:9000"}, "CLICKHOUSE_URL"),
    ],
)
def test_unusable_values_name_the_variable(tmp_path: Path, env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        _read(tmp_path, **env)
