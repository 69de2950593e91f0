"""Where an endpoint delivers: an HTTPS URL (a webhook), or a merchant's own broker — a
RabbitMQ exchange, a NATS JetStream subject, a Redis stream. Pure: what each type's URL and
configuration may say, and the credentials taken out of the URL to be sealed apart
(app/sealing.py), so that an endpoint shown or logged never carries a password.

Every type gets the same body and Standard Webhooks headers; `format: cloudevents` adds the
CloudEvents 1.0 attributes (app/cloudevents.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

TYPES = ("webhook", "rabbitmq", "nats", "redis")
SCHEMES = {
    "webhook": ("http", "https"),
    "rabbitmq": ("amqp", "amqps"),
    "nats": ("nats", "tls"),
    "redis": ("redis", "rediss"),
}
TLS_SCHEMES = ("amqps", "tls", "rediss")
DEFAULT_PORTS = {"amqp": 5672, "amqps": 5671, "nats": 4222, "tls": 4222, "redis": 6379,
                 "rediss": 6379}  # fmt: skip
_NAME = re.compile(r"^[A-Za-z0-9_.:{}/-]{1,255}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_{}-]+(\.[A-Za-z0-9_{}-]+)*$")
MAX_STREAM_LENGTH = 10_000_000
# {type} and {ordering_key} in a routing key or subject are filled per message.
PLACEHOLDERS = ("{type}", "{ordering_key}")


class DestinationError(ValueError):
    """A destination that cannot be used: the field it names and why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Destination:
    """What a delivery needs beyond the body: where, as what, with which secret."""

    type: str
    url: str  # without credentials
    config: dict[str, Any]
    credentials: str | None  # "user:password" (opened); None: none
    format: str = "standard"  # standard | cloudevents
    cloudevents_mode: str = "binary"  # binary | structured
    address: str | None = None  # the IP the egress check allowed (not part of the key)

    @property
    def key(self) -> tuple[str, str, str | None]:
        """One broker connection serves every endpoint with this key."""
        return self.type, self.url, self.credentials

    def reach(self) -> str:
        """The URL a client connects to. A plaintext scheme's host is replaced by the address
        the egress check allowed, so no second DNS lookup can answer otherwise (rebinding); a
        TLS scheme keeps its name, which the broker's certificate must then match."""
        parts = urlsplit(self.url)
        if self.address is None or parts.scheme in TLS_SCHEMES:
            return self.url
        host = f"[{self.address}]" if ":" in self.address else self.address
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit(parts._replace(netloc=host + port))

    def connect_url(self) -> str:
        """The URL with its credentials put back, for the client library only: never shown,
        never logged."""
        if not self.credentials:
            return self.reach()
        user, _, password = self.credentials.partition(":")
        parts = urlsplit(self.reach())
        userinfo = quote(unquote(user), safe="") + (
            ":" + quote(unquote(password), safe="") if password else ""
        )
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))


def split(kind: str, url: str, config: dict[str, Any]) -> tuple[str, str | None, dict[str, Any]]:
    """A broker URL and its configuration checked: (the URL without credentials, the
    credentials, the configuration with defaults). DestinationError names what is wrong."""
    if kind not in TYPES:
        raise DestinationError("type", f"one of {', '.join(TYPES)}")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES[kind]:
        raise DestinationError("url", f"a {kind} URL starts with {' or '.join(SCHEMES[kind])}://")
    if not parts.hostname:
        raise DestinationError("url", "must name a host")
    credentials = None
    if parts.username is not None:
        credentials = parts.username + (f":{parts.password}" if parts.password else "")
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        port = f":{parts.port}" if parts.port else ""
        parts = parts._replace(netloc=f"{host}{port}")
    if parts.query or parts.fragment:
        raise DestinationError("url", "no query or fragment: options go in `config`")
    return urlunsplit(parts), credentials, _config(kind, parts.path, dict(config))


def _config(kind: str, path: str, config: dict[str, Any]) -> dict[str, Any]:
    checks = {"rabbitmq": _rabbitmq, "nats": _nats, "redis": _redis}
    if kind == "webhook":
        if config:
            raise DestinationError("config", "a webhook has no configuration")
        return {}
    return checks[kind](path, config)


def _known(config: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(config) - set(allowed))
    if unknown:
        raise DestinationError(f"config.{unknown[0]}", f"unknown; allowed: {', '.join(allowed)}")


def _text(config: dict[str, Any], name: str, default: str, pattern: re.Pattern[str]) -> str:
    value = config.get(name, default)
    if not isinstance(value, str) or not pattern.match(value):
        raise DestinationError(f"config.{name}", f"must match {pattern.pattern}")
    return value


def _rabbitmq(path: str, config: dict[str, Any]) -> dict[str, Any]:
    """An exchange (empty: the default exchange, routing straight to a queue of that name)
    and a routing key (default: the event type)."""
    _known(config, ("exchange", "routing_key"))
    exchange = config.get("exchange", "")
    if not isinstance(exchange, str) or (exchange and not _NAME.match(exchange)):
        raise DestinationError("config.exchange", "an exchange name, or empty for the default")
    key = _text(config, "routing_key", "{type}", _NAME)
    return {"exchange": exchange, "routing_key": key}


def _nats(path: str, config: dict[str, Any]) -> dict[str, Any]:
    """A JetStream subject (a stream must capture it): `{ordering_key}` in it gives one
    subject per ordering key."""
    _known(config, ("subject",))
    if "subject" not in config:
        raise DestinationError("config.subject", "required: the JetStream subject to publish to")
    return {"subject": _text(config, "subject", "", _SUBJECT)}


def _redis(path: str, config: dict[str, Any]) -> dict[str, Any]:
    """A stream, trimmed to about `maxlen` entries (XADD MAXLEN ~)."""
    _known(config, ("stream", "maxlen"))
    if "stream" not in config:
        raise DestinationError("config.stream", "required: the stream to add to")
    stream = _text(config, "stream", "", _NAME)
    maxlen = config.get("maxlen", 100_000)
    if (
        isinstance(maxlen, bool)
        or not isinstance(maxlen, int)
        or not 1 <= maxlen <= MAX_STREAM_LENGTH
    ):
        raise DestinationError("config.maxlen", f"an integer from 1 to {MAX_STREAM_LENGTH}")
    return {"stream": stream, "maxlen": maxlen}


def filled(template: str, event_type: str, ordering_key: str | None) -> str:
    """A routing key or subject with its placeholders filled (a subject's tokens may not hold
    a dot or a space: they become `_`)."""
    key = ordering_key or "none"
    for bad in (".", " ", "*", ">"):
        key = key.replace(bad, "_")
    return template.replace("{type}", event_type.replace("/", ".")).replace("{ordering_key}", key)
