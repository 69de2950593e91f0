"""Settings: the only place that reads the environment; everything else is handed a Settings."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h"
MIN_SECRET_LENGTH = 16  # API keys and the admin token: long enough not to be guessed
MIN_SECRET_KEY_LENGTH = 32  # BILLHOOK_SECRET_KEY: the key of every secret at rest
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


INGEST_KINDS = ("usage_completions", "charges", "events")
INGEST_BROKERS = {"amqp": "rabbitmq", "amqps": "rabbitmq", "nats": "nats", "tls": "nats",
                  "redis": "redis", "rediss": "redis"}  # fmt: skip
_INGEST_OPTIONS = {
    "rabbitmq": ("queue",),
    "nats": ("stream", "subject", "consumer", "redeliver_after"),
    "redis": ("stream", "group", "consumer", "redeliver_after"),
}
_INGEST_REQUIRED = {"rabbitmq": ("queue",), "nats": ("stream", "subject"), "redis": ("stream",)}
_INGEST_COMMON = ("tenant", "name", "batch", "dead_letter")
_INGEST_NAME = re.compile(r"^[A-Za-z0-9_.:>*/-]{1,200}$")
MAX_INGEST_BATCH = 1000  # the bulk routes' limit


@dataclasses.dataclass(frozen=True, slots=True)
class IngestSource:
    """One BILLHOOK_INGEST line: where queue ingest reads, what, for which tenant
    (docs/configuration.md). `url` holds the broker's credentials: log `where`, never it."""

    kind: str  # usage_completions | charges | events
    broker: str  # rabbitmq | nats | redis
    url: str = dataclasses.field(repr=False)
    tenant: str = ""
    name: str = ""
    batch: int = 500
    options: tuple[
        tuple[str, str], ...
    ] = ()  # queue, stream, subject, consumer, group, dead_letter

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)

    @property
    def where(self) -> str:
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        at = self.option("queue") or self.option("stream")
        return f"{parts.scheme}://{host}{port}{parts.path} {at}"


class ConfigError(ValueError):
    """A BILLHOOK_* variable has a value we cannot use; the message (one line) names it and
    says what would do."""


def parse_duration(text: str) -> float:
    """'15s', '5m', '2h', '1d', '250ms' → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 250ms, 15s, 5m, 2h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"on", "true", "1", "yes"}:
        return True
    if lowered in {"off", "false", "0", "no"}:
        return False
    raise ValueError(f"not on/off: {text!r}")


class Settings(BaseModel):
    """Every knob of the hub, documented in docs/configuration.md."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = "sqlite:///./data/billhook.db"
    database_pool: int = Field(10, ge=1, le=1000)  # PostgreSQL connections per process
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_key: str | None = Field(None, min_length=MIN_SECRET_LENGTH)
    admin_token: str | None = Field(None, min_length=MIN_SECRET_LENGTH)
    # Seals secrets at rest (app/sealing.py): the first seals, every one opens (rotation).
    secret_key: tuple[str, ...] = ()
    run_api: bool = True
    run_worker: bool = True
    run_ingest: bool = True  # consume `ingest` here (serve, ingest; not api or worker)
    ingest: tuple[IngestSource, ...] = ()
    # Testing only: the process SIGKILLs itself at this point (the crash tests' "between
    # commit and ack"); never set in production.
    failpoint: str | None = None
    retry_schedule: tuple[float, ...] = tuple(
        parse_duration(p) for p in DEFAULT_RETRY_SCHEDULE.split(",")
    )
    request_timeout: float = Field(15.0, gt=0)
    connect_timeout: float = Field(5.0, gt=0)
    egress_allow: tuple[IPNetwork, ...] = ()
    finalize_after: float | None = 86400.0
    retention_days: int = Field(30, ge=1)
    timezone: str = "Europe/Berlin"
    worker_concurrency: int = Field(512, ge=1)
    endpoint_concurrency: int = Field(8, ge=1)
    poll_interval: float = Field(0.5, gt=0)
    shutdown_grace: float = Field(10.0, ge=0)
    read_timeout: float = Field(10.0, gt=0)  # a request's headers and body, each request
    # Proxies whose X-Forwarded-For/-Proto are believed (the scheme decides the console
    # cookie's Secure flag; the address, sign-in throttling): uvicorn's own default.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    log_format: Literal["json", "text"] = "json"

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        if not value.startswith(DATABASE_SCHEMES) or value in DATABASE_SCHEMES:
            raise ValueError(
                f"unsupported database URL {value!r}: use sqlite:///path/to/file.db or "
                "postgresql://user@host:5432/dbname"
            )
        return value

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return parse_networks(value)
        return value

    @field_validator("ingest", mode="before")
    @classmethod
    def _ingest(cls, value: Any) -> Any:
        return parse_ingest(value) if isinstance(value, str) else value

    @field_validator("secret_key")
    @classmethod
    def _secret_keys(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for key in value:
            if len(key) < MIN_SECRET_KEY_LENGTH:
                raise ValueError(
                    f"each key must be at least {MIN_SECRET_KEY_LENGTH} characters "
                    "(generate one with `billhook secret-key`)"
                )
        return value

    def require_secret_key(self) -> None:
        """Processes that read or write endpoint secrets need the key that seals them."""
        if not self.secret_key:
            raise ConfigError(
                "BILLHOOK_SECRET_KEY is not set: endpoint secrets are encrypted at rest with "
                "it; generate one with `billhook secret-key`, keep it out of the database's "
                "backups, and give every process the same value"
            )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("retry_schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        return parse_schedule(value) if isinstance(value, str) else value

    @property
    def lease_seconds(self) -> float:
        """A claimed delivery is re-claimable after this; always longer than one attempt."""
        return 2 * self.request_timeout + self.connect_timeout

    @property
    def max_attempts(self) -> int:
        return len(self.retry_schedule) + 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read BILLHOOK_* once; overrides win (tests and the CLI pass them)."""
        source = os.environ if env is None else env
        values: dict[str, Any] = {}
        for var, (field, parse) in _ENV.items():
            raw = source.get(var)
            if raw is None or raw == "":
                continue
            try:
                values[field] = parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{var}: {exc}") from exc
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from exc


def _explain(exc: ValidationError) -> str:
    """The first problem, named by its variable (not by a pydantic field)."""
    error = exc.errors(include_url=False)[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    var = _VARIABLE.get(field, field)
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_too_short":
        message = f"must be at least {MIN_SECRET_LENGTH} characters (e.g. bh_ + 32 random ones)"
    return f"{var}: {message}"


def parse_schedule(text: str) -> tuple[float, ...]:
    """'5s,5m,30m' → (5, 300, 1800): the delays after each failed attempt."""
    delays = tuple(parse_duration(p) for p in text.split(",") if p.strip())
    if not delays:
        raise ValueError("give at least one delay, e.g. 5s,5m,30m")
    return delays


def parse_networks(text: str) -> tuple[IPNetwork, ...]:
    try:
        return tuple(ipaddress.ip_network(p.strip()) for p in text.split(",") if p.strip())
    except ValueError as exc:
        raise ValueError(f"{exc}: give CIDRs such as 127.0.0.0/8,::1/128") from exc


def parse_ingest(text: str) -> tuple[IngestSource, ...]:
    """One source per line (or `;`): `<kind> <broker URL> key=value…`."""
    lines = [line.strip() for line in re.split(r"[\n;]", text)]
    sources = tuple(
        _ingest_line(line, n) for n, line in enumerate((x for x in lines if x), start=1)
    )
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ValueError("two sources have the same name: give each its own name=")
    return sources


def _ingest_line(line: str, number: int) -> IngestSource:
    kind, _, rest = line.partition(" ")
    url, _, rest = rest.strip().partition(" ")
    where = f"source {number}"
    if kind not in INGEST_KINDS:
        raise ValueError(f"{where}: starts with one of {', '.join(INGEST_KINDS)}, not {kind!r}")
    broker = INGEST_BROKERS.get(urlsplit(url).scheme)
    if broker is None or not urlsplit(url).hostname:
        raise ValueError(f"{where}: a broker URL (amqp://, nats://, redis://…) follows the kind")
    options: dict[str, str] = {}
    for pair in rest.split():
        key, sep, value = pair.partition("=")
        if not sep or key not in (*_INGEST_OPTIONS[broker], *_INGEST_COMMON) or not value:
            allowed = ", ".join((*_INGEST_OPTIONS[broker], *_INGEST_COMMON))
            raise ValueError(f"{where}: {pair!r} is not key=value with a key of {allowed}")
        if key not in ("batch", "redeliver_after") and not _INGEST_NAME.match(value):
            raise ValueError(f"{where}: {key}={value!r} has characters a broker name cannot")
        options[key] = value
    for required in _INGEST_REQUIRED[broker]:
        if required not in options:
            raise ValueError(f"{where}: a {broker} source needs {required}=")
    batch = _integer(options.pop("batch", "500"))
    if not 1 <= batch <= MAX_INGEST_BATCH:
        raise ValueError(f"{where}: batch is 1 to {MAX_INGEST_BATCH}")
    if "redeliver_after" in options:
        parse_duration(options["redeliver_after"])
    return IngestSource(
        kind=kind, broker=broker, url=url, batch=batch,
        tenant=options.pop("tenant", "tn_default"), name=options.pop("name", f"{kind}-{number}"),
        options=tuple(sorted(options.items())),
    )  # fmt: skip


def _keys(text: str) -> tuple[str, ...]:
    """'new,old' → ('new', 'old'): the first seals, every one opens."""
    return tuple(k.strip() for k in text.split(",") if k.strip())


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _optional_duration(text: str) -> float | None:
    return None if text.strip().lower() == "off" else parse_duration(text)


def _text(text: str) -> str:
    return text


_ENV: dict[str, tuple[str, Any]] = {
    "BILLHOOK_DATABASE_URL": ("database_url", _text),
    "BILLHOOK_DATABASE_POOL": ("database_pool", _integer),
    "BILLHOOK_HOST": ("host", _text),
    "BILLHOOK_PORT": ("port", _integer),
    "BILLHOOK_API_KEY": ("api_key", _text),
    "BILLHOOK_ADMIN_TOKEN": ("admin_token", _text),
    "BILLHOOK_SECRET_KEY": ("secret_key", _keys),
    "BILLHOOK_API": ("run_api", parse_bool),
    "BILLHOOK_WORKER": ("run_worker", parse_bool),
    "BILLHOOK_RETRY_SCHEDULE": ("retry_schedule", parse_schedule),
    "BILLHOOK_REQUEST_TIMEOUT": ("request_timeout", parse_duration),
    "BILLHOOK_CONNECT_TIMEOUT": ("connect_timeout", parse_duration),
    "BILLHOOK_EGRESS_ALLOW": ("egress_allow", parse_networks),
    "BILLHOOK_FINALIZE_AFTER": ("finalize_after", _optional_duration),
    "BILLHOOK_RETENTION_DAYS": ("retention_days", _integer),
    "BILLHOOK_TIMEZONE": ("timezone", _text),
    "BILLHOOK_WORKER_CONCURRENCY": ("worker_concurrency", _integer),
    "BILLHOOK_ENDPOINT_CONCURRENCY": ("endpoint_concurrency", _integer),
    "BILLHOOK_POLL_INTERVAL": ("poll_interval", parse_duration),
    "BILLHOOK_SHUTDOWN_GRACE": ("shutdown_grace", parse_duration),
    "BILLHOOK_READ_TIMEOUT": ("read_timeout", parse_duration),
    "BILLHOOK_FORWARDED_ALLOW_IPS": ("forwarded_allow_ips", _text),
    "BILLHOOK_LOG_FORMAT": ("log_format", _text),
    "BILLHOOK_INGEST": ("ingest", parse_ingest),
    "BILLHOOK_TEST_FAILPOINT": ("failpoint", _text),
}
_VARIABLE = {field: var for var, (field, _) in _ENV.items()}
