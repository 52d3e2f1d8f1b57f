"""Settings: read once from the environment into a frozen object.

Dittofeed's variable names are used wherever Dittofeed has one (AUTH_MODE, SECRET_KEY, PASSWORD,
OPEN_ID_*, DASHBOARD_URL, DATABASE_*, CLICKHOUSE_*, BLOB_STORAGE_*, ...) so an existing `.env` keeps
working; everything feedgate adds is `FEEDGATE_*`. Tests build `Settings` directly instead of editing
`os.environ`. Secrets are kept out of `repr()` so a logged settings object leaks nothing.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args
from urllib.parse import quote

AuthMode = Literal["anonymous", "single-tenant", "multi-tenant"]

DEFAULT_BODY_LIMIT = 5 * 1024 * 1024
# Published in sample configurations (Dittofeed's docker-compose.ee.yaml): anyone can sign with it.
SAMPLE_SECRET_KEYS = frozenset({"GEGL1RHjFVOxIO80Dp8+ODlZPOjm2IDBJB/UunHlf3c="})


class SettingsError(ValueError):
    """An environment variable holds a value feedgate cannot use; the message names the variable."""


@dataclass(frozen=True)
class OpenIdSettings:
    """The OPEN_ID_* variables of Dittofeed's multi-tenant mode (presets fill the URLs from the issuer)."""

    provider: str = "oidc"
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    issuer: str | None = None
    authorization_url: str | None = None
    token_url: str | None = None
    user_info_url: str | None = None
    end_session_endpoint: str | None = None
    return_to_query_param: str | None = None


@dataclass(frozen=True)
class BlobStorageSettings:
    """Dittofeed's ENABLE_BLOB_STORAGE and BLOB_STORAGE_*: disabled means no blob storage; enabled with
    an endpoint or access key means S3, enabled without either a directory under the data dir."""

    enabled: bool = False
    endpoint: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    bucket: str = "dittofeed"
    region: str = "us-east-1"


@dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved to concrete values (no lookups happen after start-up)."""

    data_dir: Path
    database_url: str = field(repr=False)
    clickhouse_url: str = field(repr=False)
    clickhouse_database: str = "feedgate"
    clickhouse_user: str | None = None
    clickhouse_password: str | None = field(default=None, repr=False)
    auth_mode: AuthMode = "anonymous"
    secret_key: str = field(default="", repr=False)
    secret_key_fallbacks: tuple[str, ...] = field(default=(), repr=False)
    password: str | None = field(default=None, repr=False)
    session_cookie_secure: bool = False
    open_id: OpenIdSettings = field(default_factory=OpenIdSettings)
    dashboard_url: str = "http://localhost:3000"
    signout_url: str = "/dashboard/signout"
    signout_redirect_url: str | None = None
    onboarding_url: str = "/dashboard-l/onboarding"
    api_prefix: str = ""
    api_body_limit: int = DEFAULT_BODY_LIMIT
    workspace_name: str = "Default"
    bootstrap: bool = False
    batch_chunk_size: int = 100
    compute_properties_interval_ms: int = 10_000
    # How often the worker looks for due journey steps and broadcast batches.
    worker_poll_ms: int = 500
    # Transient send failures: tries per broadcast message (upstream's
    # BROADCAST_SEND_MESSAGES_MAX_ATTEMPTS) and the first retry delay, doubling after.
    broadcast_max_attempts: int = 5
    send_retry_base_ms: int = 1000
    # A worker that has not settled a claimed batch this long after claiming it is presumed dead.
    send_lease_seconds: int = 300
    # Read timeout of a provider API call (connect: at most 10 s); a call that times out is retried.
    provider_timeout_seconds: int = 30
    blob_storage: BlobStorageSettings = field(default_factory=BlobStorageSettings)
    start_otel: bool = False
    session_ttl_max_seconds: int = 86_400
    allow_write_key_sessions: bool = False
    log_level: str = "INFO"
    # Prometheus metrics: the gateway serves GET /metrics; `feedgate worker` listens on metrics_port.
    metrics_enabled: bool = False
    metrics_port: int = 9464
    # Acknowledge ingested events once they are in a local log (engine/ingest_log.py) rather than in
    # ClickHouse. None: exactly when events are embedded, where the store is this one process's too.
    ingest_log: bool | None = None
    # Provider type -> API base URL, replacing the provider's public one (a regional endpoint, a proxy).
    provider_endpoints: Mapping[str, str] = field(default_factory=dict)

    @property
    def embedded_events(self) -> bool:
        """True when events live in chdb inside this process (so the worker must run in-process too)."""
        return self.clickhouse_url.startswith("chdb://")

    @property
    def logs_ingest(self) -> bool:
        return self.embedded_events if self.ingest_log is None else self.ingest_log

    @property
    def ingest_log_dir(self) -> Path:
        return self.data_dir / "ingest-log"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the environment once; raise `SettingsError` naming the first unusable variable."""
        env = _Environ(os.environ if environ is None else environ)
        data_dir = Path(env.read_str("FEEDGATE_DATA_DIR") or ".feedgate").expanduser().absolute()
        auth_mode = env.read_choice("AUTH_MODE", get_args(AuthMode), "anonymous")
        password = env.read_str("PASSWORD")
        if auth_mode == "single-tenant" and not password:
            raise SettingsError("PASSWORD must be set when AUTH_MODE=single-tenant")
        secret_key = env.read_str("SECRET_KEY")
        if not secret_key:
            if auth_mode != "anonymous":
                raise SettingsError(f"SECRET_KEY must be set when AUTH_MODE={auth_mode}")
            secret_key = _load_or_create_secret_key(data_dir)
        fallbacks = env.read_list("FEEDGATE_SECRET_KEY_FALLBACKS")
        if auth_mode != "anonymous" and SAMPLE_SECRET_KEYS & {secret_key, *fallbacks}:
            raise SettingsError(
                "SECRET_KEY is a published sample key: anyone can sign sessions with it. Set your own "
                f"(openssl rand -base64 32) when AUTH_MODE={auth_mode}"
            )
        if auth_mode == "multi-tenant" and not (
            env.read_str("OPEN_ID_CLIENT_ID") and env.read_str("OPEN_ID_ISSUER")
        ):
            raise SettingsError(
                "OPEN_ID_CLIENT_ID and OPEN_ID_ISSUER must be set when AUTH_MODE=multi-tenant"
            )
        return cls(
            data_dir=data_dir,
            database_url=_database_url(env, data_dir),
            clickhouse_url=_clickhouse_url(env, data_dir),
            clickhouse_database=env.read_str("CLICKHOUSE_DATABASE") or "feedgate",
            clickhouse_user=env.read_str("CLICKHOUSE_USER"),
            clickhouse_password=env.read_str("CLICKHOUSE_PASSWORD"),
            auth_mode=auth_mode,
            secret_key=secret_key,
            secret_key_fallbacks=fallbacks,
            password=password,
            session_cookie_secure=env.read_bool("SESSION_COOKIE_SECURE", False),
            open_id=OpenIdSettings(
                provider=env.read_str("AUTH_PROVIDER") or "oidc",
                client_id=env.read_str("OPEN_ID_CLIENT_ID"),
                client_secret=env.read_str("OPEN_ID_CLIENT_SECRET"),
                issuer=env.read_str("OPEN_ID_ISSUER"),
                authorization_url=env.read_str("OPEN_ID_AUTHORIZATION_URL"),
                token_url=env.read_str("OPEN_ID_TOKEN_URL"),
                user_info_url=env.read_str("OPEN_ID_USER_INFO_URL"),
                end_session_endpoint=env.read_str("OPEN_ID_END_SESSION_ENDPOINT"),
                return_to_query_param=env.read_str("OPEN_ID_RETURN_TO_QUERY_PARAM"),
            ),
            dashboard_url=(env.read_str("DASHBOARD_URL") or "http://localhost:3000").rstrip("/"),
            signout_url=env.read_str("SIGNOUT_URL") or "/dashboard/signout",
            signout_redirect_url=env.read_str("SIGNOUT_REDIRECT_URL"),
            onboarding_url=env.read_str("ONBOARDING_URL") or "/dashboard-l/onboarding",
            api_prefix=(env.read_str("API_PREFIX") or "").rstrip("/"),
            api_body_limit=env.read_int("API_BODY_LIMIT", DEFAULT_BODY_LIMIT, minimum=1024),
            workspace_name=env.read_str("WORKSPACE_NAME") or "Default",
            bootstrap=env.read_bool("BOOTSTRAP", False),
            batch_chunk_size=env.read_int("BATCH_CHUNK_SIZE", 100, minimum=1),
            compute_properties_interval_ms=env.read_int("COMPUTE_PROPERTIES_INTERVAL", 10_000, minimum=100),
            worker_poll_ms=env.read_int("FEEDGATE_WORKER_POLL_MS", 500, minimum=10),
            broadcast_max_attempts=env.read_int("BROADCAST_SEND_MESSAGES_MAX_ATTEMPTS", 5, minimum=1),
            send_retry_base_ms=env.read_int("FEEDGATE_SEND_RETRY_BASE_MS", 1000, minimum=1),
            send_lease_seconds=env.read_int("FEEDGATE_SEND_LEASE_SECONDS", 300, minimum=1),
            provider_timeout_seconds=env.read_int("FEEDGATE_PROVIDER_TIMEOUT_SECONDS", 30, minimum=1),
            blob_storage=BlobStorageSettings(
                enabled=env.read_bool("ENABLE_BLOB_STORAGE", False),
                endpoint=env.read_str("BLOB_STORAGE_ENDPOINT"),
                access_key_id=env.read_str("BLOB_STORAGE_ACCESS_KEY_ID"),
                secret_access_key=env.read_str("BLOB_STORAGE_SECRET_ACCESS_KEY"),
                bucket=env.read_str("BLOB_STORAGE_BUCKET") or "dittofeed",
                region=env.read_str("BLOB_STORAGE_REGION") or "us-east-1",
            ),
            start_otel=env.read_bool("START_OTEL", False),
            session_ttl_max_seconds=env.read_int("FEEDGATE_SESSION_TTL_MAX_SECONDS", 86_400, minimum=60),
            allow_write_key_sessions=env.read_bool("FEEDGATE_ALLOW_WRITE_KEY_SESSIONS", False),
            log_level=(env.read_str("FEEDGATE_LOG_LEVEL") or "INFO").upper(),
            provider_endpoints=env.read_pairs("FEEDGATE_PROVIDER_ENDPOINTS"),
            metrics_enabled=env.read_bool("FEEDGATE_METRICS", False),
            metrics_port=env.read_int("FEEDGATE_METRICS_PORT", 9464, minimum=1),
            ingest_log=env.read_bool("FEEDGATE_INGEST_LOG", False)
            if env.read_str("FEEDGATE_INGEST_LOG")
            else None,
        )


class _Environ:
    """Typed reads of string variables; blank counts as unset, as in a docker-compose `.env`."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def read_str(self, name: str) -> str | None:
        value = self._environ.get(name, "").strip()
        return value or None

    def read_bool(self, name: str, default: bool) -> bool:
        value = self.read_str(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise SettingsError(f"{name} must be true or false, not {value!r}")

    def read_int(self, name: str, default: int, *, minimum: int) -> int:
        value = self.read_str(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise SettingsError(f"{name} must be an integer, not {value!r}") from None
        if number < minimum:
            raise SettingsError(f"{name} must be at least {minimum}, not {number}")
        return number

    def read_choice(self, name: str, choices: tuple[AuthMode, ...], default: AuthMode) -> AuthMode:
        value = self.read_str(name) or default
        for choice in choices:
            if value == choice:
                return choice
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, not {value!r}")

    def read_list(self, name: str) -> tuple[str, ...]:
        return tuple(item.strip() for item in (self.read_str(name) or "").split(",") if item.strip())

    def read_pairs(self, name: str) -> dict[str, str]:
        """`Key=value,Key=value` as a dict."""
        pairs = {}
        for item in self.read_list(name):
            key, equals, value = item.partition("=")
            if not equals or not key.strip() or not value.strip():
                raise SettingsError(f"{name} must be a list of Name=value pairs, not {item!r}")
            pairs[key.strip()] = value.strip()
        return pairs


def _database_url(env: _Environ, data_dir: Path) -> str:
    """DATABASE_URL, else Dittofeed's DATABASE_HOST/PORT/USER/PASSWORD/NAME, else SQLite in the data dir."""
    url = env.read_str("DATABASE_URL")
    if url:
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix) :]
        if not url.startswith(("postgresql+psycopg://", "sqlite://")):
            raise SettingsError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        return url
    host = env.read_str("DATABASE_HOST")
    if host:
        user = quote(env.read_str("DATABASE_USER") or "postgres", safe="")
        password = env.read_str("DATABASE_PASSWORD")
        auth = f"{user}:{quote(password, safe='')}" if password else user
        port = env.read_int("DATABASE_PORT", 5432, minimum=1)
        name = env.read_str("DATABASE_NAME") or "feedgate"
        return f"postgresql+psycopg://{auth}@{host}:{port}/{name}"
    return f"sqlite:///{data_dir / 'feedgate.db'}"


def _clickhouse_url(env: _Environ, data_dir: Path) -> str:
    """CLICKHOUSE_URL, else Dittofeed's CLICKHOUSE_HOST, else embedded chdb in the data dir."""
    url = env.read_str("CLICKHOUSE_URL") or env.read_str("CLICKHOUSE_HOST")
    if url is None:
        return f"chdb://{data_dir / 'chdb'}"
    if not url.startswith(("http://", "https://", "chdb://")):
        raise SettingsError("CLICKHOUSE_URL must start with http://, https:// or chdb://")
    return url


def _load_or_create_secret_key(data_dir: Path) -> str:
    """Anonymous mode needs no operator step: a random key is made once and kept in the data dir."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
