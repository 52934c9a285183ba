"""Settings: one object, read once from the environment and an optional `.env`."""

import ipaddress
import logging
import secrets
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)

VAR_DIR = Path("var")
# Where `trends up` starts its private Redis; every process finds it there (find_private_redis).
PRIVATE_REDIS_DIR = VAR_DIR / "redis"
PRIVATE_REDIS_SOCKET = PRIVATE_REDIS_DIR / "redis.sock"
DATABASES = ("sqlite", "sqlite+pysqlite", "postgresql+psycopg")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Configuration of every process: web, worker, scheduler and CLI."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    trends_env: Literal["development", "test", "production"] = "development"
    database_url: str = f"sqlite:///{VAR_DIR}/trends.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    secret_key: str | None = Field(default=None, repr=False)
    media_dir: Path = Path("media")
    backup_dir: Path = VAR_DIR / "backups"
    cors_origins: Annotated[list[str], NoDecode] = ["http://localhost:8080"]
    # Request headers cross-site frontends may send besides those always allowed (Apollo Client's).
    cors_allow_headers: Annotated[list[str], NoDecode] = [
        "apollographql-client-name",
        "apollographql-client-version",
        "apollo-require-preflight",
    ]
    max_page_size: int = Field(default=500, ge=1)
    import_batch_size: int = Field(default=5000, ge=1)
    import_max_errors: int = Field(default=100, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    # The web process's statements only (workers and the CLI run long imports); 0: no limit.
    db_statement_timeout_ms: int = Field(default=5000, ge=0)
    log_level: str = "INFO"

    session_cookie_secure: bool = False
    session_max_age: int = Field(default=14 * 24 * 3600, ge=60)
    session_idle_seconds: int = Field(default=2 * 24 * 3600, ge=60)
    session_cookie_samesite: Literal["lax", "strict", "none"] = "lax"
    login_max_failures_per_email: int = Field(default=5, ge=1)
    login_max_failures_per_client: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    rate_limit_anon: int = Field(default=120, ge=0)
    rate_limit_user: int = Field(default=600, ge=0)
    # Prefix of the limiter's Redis keys, so that deployments (or test runs) can share a Redis.
    rate_limit_namespace: str = "trends:rl"
    # Seconds a limiter call may wait for Redis before the limits count per process (requests)
    # or refuse (logins).
    rate_limit_timeout: float = Field(default=0.25, gt=0)
    max_query_depth: int = Field(default=10, ge=1)
    max_query_tokens: int = Field(default=1000, ge=1)
    max_query_aliases: int = Field(default=15, ge=0)
    max_query_fields: int = Field(default=2000, ge=1)
    max_query_cost: int = Field(default=20_000, ge=1)
    max_batch_operations: int = Field(default=10, ge=0)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    cache_ttl: int = Field(default=120, ge=0)
    # Prefix of the cache's Redis keys (which also name the database and the code's version).
    cache_namespace: str = "trends"
    # Prefix of the Redis pub/sub channels that tell web processes of changed import runs.
    # Channels are shared by every logical database of a Redis: deployments sharing one need
    # a prefix each.
    pubsub_namespace: str = "trends:pubsub"
    # Seconds a publication or a subscription of those channels may wait for Redis.
    pubsub_timeout: float = Field(default=1.0, gt=0)
    cache_timeout: float = Field(default=0.1, gt=0)
    cache_retry_seconds: float = Field(default=10, ge=0)
    # Automatic persisted queries: documents kept in Redis under this prefix, for this long.
    persisted_queries_namespace: str = "trends:apq"
    persisted_queries_ttl: int = Field(default=7 * 24 * 3600, ge=1)
    # Only operations registered with `trends persist` run (staff excepted).
    persisted_queries_only: bool = False
    # max-age of anonymous GET queries' answers (0: revalidate each time, by ETag).
    http_cache_max_age: int = Field(default=0, ge=0)
    # Per server process: recent entries also kept in memory (keys hold the generation).
    cache_memory_mb: int = Field(default=64, ge=0)
    # Repeated plain reads of trends answered from compiled statements (schema/prepared.py);
    # off: every document runs through graphql-core's execution.
    prepared_reads: bool = True
    queues: Annotated[list[str], NoDecode] = ["trends"]
    job_timeout: int = Field(default=3600, ge=1)
    upload_max_bytes: int = Field(default=50 << 20, ge=1)
    import_interval: int = Field(default=120, ge=1)
    import_settle_seconds: float = Field(default=10, ge=0)
    backup_interval: int = Field(default=24 * 3600, ge=1)
    backup_keep: int = Field(default=14, ge=1)
    graphql_introspection: bool | None = None
    graphiql: bool | None = None
    # `make bench` only: GET /bench/fixed answers a constant JSON body of this many bytes.
    bench_route: bool = False
    bench_body_bytes: int = Field(default=0, ge=0)
    # GET /metrics answers a bearer token or these client addresses (CIDR); with neither, nobody.
    metrics_token: str | None = Field(default=None, repr=False, min_length=16)
    metrics_allow: Annotated[list[str], NoDecode] = []
    # Distinct operation names the request metrics label; later ones are counted as "other".
    metrics_max_operations: int = Field(default=100, ge=0)

    @field_validator("cors_origins", "cors_allow_headers", "queues", "metrics_allow", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @field_validator("metrics_allow")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or a CIDR network") from None
        return value

    @field_validator("session_cookie_samesite", mode="before")
    @classmethod
    def _lower_samesite(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _use_psycopg3(cls, value: str) -> str:
        for prefix in ("postgres://", "postgresql://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        from sqlalchemy.engine import make_url  # here: `trends --help` does not pay for it
        from sqlalchemy.exc import ArgumentError

        try:
            driver = make_url(value).drivername
        except ArgumentError:
            driver = ""
        if driver not in DATABASES:
            scheme = value.partition("://")[0] if "://" in value else ""
            # Never the whole URL: it may hold a password.
            what = f"unsupported database {scheme!r}" if scheme else "not a database URL"
            raise ValueError(f"{what}: use sqlite:///PATH or postgresql://USER@HOST/DATABASE")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError(f"unknown level {value!r}: use one of {', '.join(LOG_LEVELS)}")
        return value.strip().upper()

    @model_validator(mode="after")
    def _production_needs_secret(self) -> "Settings":
        if self.production and not self.secret_key:
            raise ValueError("SECRET_KEY must be set when TRENDS_ENV=production")
        return self

    @model_validator(mode="after")
    def _samesite_none_needs_secure(self) -> "Settings":
        # Browsers drop a SameSite=None cookie that is not Secure: sign-in would silently fail.
        if self.session_cookie_samesite == "none" and not self.cookie_secure:
            raise ValueError(
                "SESSION_COOKIE_SAMESITE=none needs secure cookies: "
                "set SESSION_COOKIE_SECURE=1 (or TRENDS_ENV=production) and serve over HTTPS"
            )
        return self

    @property
    def production(self) -> bool:
        return self.trends_env == "production"

    @property
    def cookie_secure(self) -> bool:
        """Send the session cookie over HTTPS only."""
        return self.production or self.session_cookie_secure

    @property
    def introspection_enabled(self) -> bool:
        return (
            not self.production
            if self.graphql_introspection is None
            else self.graphql_introspection
        )

    @property
    def graphiql_enabled(self) -> bool:
        return not self.production if self.graphiql is None else self.graphiql

    @cached_property
    def session_secret(self) -> str:
        """SECRET_KEY, or a development key generated once and kept under var/."""
        if self.secret_key:
            return self.secret_key
        path = VAR_DIR / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        log.warning("SECRET_KEY is not set: using the development key in %s", path)
        return path.read_text().strip()


def private_redis_url(socket: Path) -> str:
    """The URL of a Redis listening on the unix socket `socket`."""
    return f"unix://{socket.resolve()}?db=0"


def redis_problem(url: str, timeout: float = 0.5) -> str | None:
    """Why the Redis at `url` does not answer a PING within `timeout`; None when it does."""
    import redis  # here: the commands that never ask (`trends --help`) do not pay for it

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
        return None
    except redis.RedisError as exc:
        return str(exc)
    finally:
        client.close()


def find_private_redis(settings: Settings, socket: Path = PRIVATE_REDIS_SOCKET) -> Settings:
    """The settings, on the private Redis of a running `trends up` when REDIS_URL is not set.

    So that every process of this folder (a `trends import` too) uses the Redis that web and
    workers use: otherwise its writes would not invalidate their cache. A socket left by a
    `trends up` that was killed does not answer, and the default URL stays.
    """
    if "redis_url" in settings.model_fields_set or not socket.is_socket():
        return settings
    url = private_redis_url(socket)
    if redis_problem(url) is not None:
        return settings
    log.debug("REDIS_URL is not set: using the private Redis at %s", url)
    return settings.model_copy(update={"redis_url": url})


def configure_logging(level: str, verbose: bool = False) -> None:
    """Our loggers at `level` (LOG_LEVEL), libraries' at WARNING; `verbose`: DEBUG and INFO."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("trends_gql").setLevel(logging.DEBUG if verbose else level)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return find_private_redis(Settings())
