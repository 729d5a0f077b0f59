"""Settings from the environment (12-factor), validated once at start-up.

Nothing here runs at import time: callers build a ``Settings`` with ``load_settings()``
and pass it down, so tests can construct any configuration directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "staging", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class ConfigError(Exception):
    """The environment holds a value the server cannot run with."""


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    """Every setting of the server and worker; names are the environment variables."""

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, case_sensitive=True
    )

    environment: Environment = Field("development", validation_alias=_env("ENVIRONMENT"))
    log_level: LogLevel = Field("INFO", validation_alias=_env("LOG_LEVEL"))
    # OpenID Connect bearer tokens, accepted beside API keys when an issuer is set.
    oidc_issuer: str | None = Field(None, validation_alias=_env("WMS_OIDC_ISSUER"))
    oidc_audience: str | None = Field(None, validation_alias=_env("WMS_OIDC_AUDIENCE"))
    oidc_jwks_url: str | None = Field(None, validation_alias=_env("WMS_OIDC_JWKS_URL"))
    oidc_tenant_claim: str = Field("tenant", validation_alias=_env("WMS_OIDC_TENANT_CLAIM"))
    oidc_roles_claim: str = Field("roles", validation_alias=_env("WMS_OIDC_ROLES_CLAIM"))
    oidc_subject_claim: str = Field("sub", validation_alias=_env("WMS_OIDC_SUBJECT_CLAIM"))
    oidc_jwks_cache_seconds: float = Field(
        300.0, ge=0, le=86400, validation_alias=_env("WMS_OIDC_JWKS_CACHE_SECONDS")
    )
    # Large documents (a 5,000-line order, a 10,000-row import) must fit; more is refused.
    max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=10 * 1024 * 1024, validation_alias=_env("WMS_MAX_BODY_BYTES")
    )
    # API requests one process serves at once; past it, 503 at once instead of a queue
    # (0: no limit). ~0.25-0.5 s of work at a process's lookup rate (bench/FINDINGS.md).
    max_in_flight: int = Field(256, ge=0, le=100_000, validation_alias=_env("WMS_MAX_IN_FLIGHT"))
    # Token buckets per credential and per tenant (shared through Redis when configured).
    rate_limit_rps: float = Field(100.0, gt=0, validation_alias=_env("WMS_RATE_LIMIT_RPS"))
    rate_limit_burst: float = Field(200.0, ge=1, validation_alias=_env("WMS_RATE_LIMIT_BURST"))
    tenant_rate_limit_rps: float = Field(
        500.0, gt=0, validation_alias=_env("WMS_TENANT_RATE_LIMIT_RPS")
    )
    tenant_rate_limit_burst: float = Field(
        1000.0, ge=1, validation_alias=_env("WMS_TENANT_RATE_LIMIT_BURST")
    )
    database_url: str | None = Field(None, validation_alias=_env("DATABASE_URL"))
    database_admin_url: str | None = Field(None, validation_alias=_env("DATABASE_ADMIN_URL"))
    database_replica_url: str | None = Field(None, validation_alias=_env("DATABASE_REPLICA_URL"))
    redis_url: str | None = Field(None, validation_alias=_env("REDIS_URL"))
    kafka_brokers: str | None = Field(None, validation_alias=_env("KAFKA_BROKERS"))
    host: str = Field("0.0.0.0", validation_alias=_env("HOST"))  # noqa: S104 - a container listens on all
    port: int = Field(8080, ge=1, le=65535, validation_alias=_env("PORT"))
    metrics_port: int = Field(9090, ge=0, le=65535, validation_alias=_env("METRICS_PORT"))
    data_dir: Path = Field(Path(".wms"), validation_alias=_env("WMS_DATA_DIR"))
    region: str = Field("local", min_length=1, validation_alias=_env("WMS_REGION"))
    drain_seconds: float = Field(5.0, ge=0, le=600, validation_alias=_env("WMS_DRAIN_SECONDS"))
    shutdown_timeout_seconds: float = Field(
        25.0, gt=0, le=600, validation_alias=_env("WMS_SHUTDOWN_TIMEOUT_SECONDS")
    )
    migrate_on_start: bool = Field(True, validation_alias=_env("WMS_MIGRATE_ON_START"))
    db_pool_min: int = Field(1, ge=0, le=200, validation_alias=_env("WMS_DB_POOL_MIN"))
    db_pool_max: int = Field(10, ge=1, le=200, validation_alias=_env("WMS_DB_POOL_MAX"))
    db_connect_timeout_seconds: float = Field(
        10.0, gt=0, le=300, validation_alias=_env("WMS_DB_CONNECT_TIMEOUT_SECONDS")
    )
    statement_timeout_ms: int = Field(
        5000, ge=100, le=3_600_000, validation_alias=_env("WMS_STATEMENT_TIMEOUT_MS")
    )
    lock_timeout_ms: int = Field(
        2000, ge=10, le=600_000, validation_alias=_env("WMS_LOCK_TIMEOUT_MS")
    )
    migration_statement_timeout_ms: int = Field(
        600_000, ge=1000, validation_alias=_env("WMS_MIGRATION_STATEMENT_TIMEOUT_MS")
    )
    migration_lock_wait_seconds: float = Field(
        120.0, gt=0, validation_alias=_env("WMS_MIGRATION_LOCK_WAIT_SECONDS")
    )
    docs_enabled: bool = Field(True, validation_alias=_env("WMS_DOCS_ENABLED"))
    api_key_pepper: SecretStr | None = Field(None, validation_alias=_env("WMS_API_KEY_PEPPER"))
    auth_cache_seconds: float = Field(
        5.0, ge=0, le=300, validation_alias=_env("WMS_AUTH_CACHE_SECONDS")
    )
    event_retention_hours: float = Field(
        168.0, gt=0, le=24 * 366, validation_alias=_env("WMS_EVENT_RETENTION_HOURS")
    )
    event_prune_interval_seconds: float = Field(
        60.0, gt=0, le=86400, validation_alias=_env("WMS_EVENT_PRUNE_INTERVAL_SECONDS")
    )
    event_shards: int = Field(16, ge=1, le=1024, validation_alias=_env("WMS_EVENT_SHARDS"))
    relay_batch_size: int = Field(
        500, ge=1, le=10000, validation_alias=_env("WMS_RELAY_BATCH_SIZE")
    )
    # librdkafka's default; the topic's max.message.bytes (broker default 1,048,588) must
    # be at least this, or the broker refuses what the producer let through.
    kafka_message_max_bytes: int = Field(
        1_000_000, ge=1000, le=1_000_000_000, validation_alias=_env("WMS_KAFKA_MESSAGE_MAX_BYTES")
    )
    worker_poll_seconds: float = Field(
        2.0, gt=0, le=300, validation_alias=_env("WMS_WORKER_POLL_SECONDS")
    )
    cache_ttl_seconds: float = Field(
        300.0, gt=0, le=86400, validation_alias=_env("WMS_CACHE_TTL_SECONDS")
    )
    embedded_max_connections: int = Field(
        300, ge=20, le=5000, validation_alias=_env("WMS_EMBEDDED_MAX_CONNECTIONS")
    )
    # Tracing (OpenTelemetry's own variable names): off unless an OTLP/HTTP endpoint is set.
    otel_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_service_name: str | None = Field(
        None, min_length=1, validation_alias=_env("OTEL_SERVICE_NAME")
    )

    @field_validator("otel_endpoint")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL (OTLP over HTTP)")
        return value

    @field_validator("database_url", "database_admin_url", "database_replica_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("api_key_pepper")
    @classmethod
    def _long_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @property
    def embedded(self) -> bool:
        """True when no DATABASE_URL is given and the server runs its own PostgreSQL."""
        return self.database_url is None

    @property
    def migration_url(self) -> str:
        """The URL migrations run with: the admin URL when given, else the runtime one."""
        url = self.database_admin_url or self.database_url
        if url is None:
            raise ConfigError("no database URL is configured")
        return url


def load_settings(**overrides: object) -> Settings:
    """Read the environment into ``Settings``; raise ``ConfigError`` with one clear line."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    oidc = (settings.oidc_issuer, settings.oidc_audience, settings.oidc_jwks_url)
    if any(oidc) and not all(oidc):
        raise ConfigError(
            "WMS_OIDC_ISSUER, WMS_OIDC_AUDIENCE and WMS_OIDC_JWKS_URL go together: set all three"
        )
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError("WMS_DB_POOL_MIN must not exceed WMS_DB_POOL_MAX")
    return settings


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad variable, its problem and (when safe) the value given."""
    parts = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        env_name = _ENV_NAMES.get(name, name)
        value = error.get("input")
        shown = "" if env_name in _SECRET_VARIABLES or value is None else f" (got {value!r})"
        parts.append(f"{env_name}: {error['msg']}{shown}")
    return "; ".join(parts)


_ENV_NAMES = {
    name: str(field.validation_alias.choices[0])
    for name, field in Settings.model_fields.items()
    if isinstance(field.validation_alias, AliasChoices)
}
_SECRET_VARIABLES = {
    "DATABASE_URL",
    "DATABASE_ADMIN_URL",
    "DATABASE_REPLICA_URL",
    "REDIS_URL",
    "WMS_API_KEY_PEPPER",
}
