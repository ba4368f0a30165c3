# -*- test-case-name: tests.test_etcd -*-
"""
The C{[etcd]} table: where a fleet's shared pools and routes live.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = ["EtcdConfig", "parse_etcd"]

_ETCD_KEYS = ("ca", "cert", "endpoints", "key", "password", "prefix", "user")


@dataclass(frozen=True)
class EtcdConfig:
    """
    An C{[etcd]} table.

    @ivar endpoints: Base URLs of etcd's HTTP/JSON gateway
        (C{"http://127.0.0.1:2379"}), tried in turn.
    @ivar prefix: The key prefix, without a trailing C{/} (C{"/lbproxy"}).
    @ivar user: The etcd user, or L{None} (no authentication).
    @ivar password: Its password (left out of reprs).
    @ivar ca: A CA file to verify C{https://} endpoints with, or L{None}
        (the system's).
    @ivar cert: A client certificate file, or L{None}.
    @ivar key: Its private key file, or L{None}.
    """

    endpoints: Tuple[str, ...]
    prefix: str = "/lbproxy"
    user: Optional[str] = None
    password: Optional[str] = None
    ca: Optional[str] = None
    cert: Optional[str] = None
    key: Optional[str] = None

    def __repr__(self) -> str:
        # The password stays out of logs and configuration checksums' text.
        return (f"EtcdConfig(endpoints={self.endpoints!r}, prefix={self.prefix!r}, "
                f"user={self.user!r}, ca={self.ca!r}, cert={self.cert!r}, key={self.key!r})")


def _endpoint(text: str, key: str, reader: Reader) -> str:
    if not (text.startswith("http://") or text.startswith("https://")):
        raise reader.fail(key, f'expected an http:// or https:// URL, got {quote(text)}')
    rest = text.split("://", 1)[1].rstrip("/")
    if not rest or "/" in rest:
        raise reader.fail(key, f'expected "http://host:port" with no path, got {quote(text)}')
    return text.rstrip("/")


def parse_etcd(value: Any, key: str, reader: Reader) -> EtcdConfig:
    """
    The C{[etcd]} table: C{endpoints} (required), C{prefix} (default
    C{"/lbproxy"}), C{user} and C{password} (together), C{ca}, C{cert} and
    C{key} (C{cert} and C{key} together).
    """
    table = reader.table(value, key, _ETCD_KEYS)
    endpoints = reader.strings(
        reader.required(table, key, "endpoints"), child_key(key, "endpoints"),
        'e.g. endpoints = ["http://127.0.0.1:2379"]',
        lambda text, item_key: _endpoint(text, item_key, reader),
    )
    prefix = "/lbproxy"
    if "prefix" in table:
        prefix_key = child_key(key, "prefix")
        prefix = reader.nonempty_string(table["prefix"], prefix_key).rstrip("/")
        if not prefix.startswith("/"):
            raise reader.fail(prefix_key, f'must start with "/", got {quote(prefix)}')
    settings = {
        name: reader.nonempty_string(table[name], child_key(key, name))
        for name in ("user", "password", "ca", "cert", "key") if name in table
    }
    for one, other in (("user", "password"), ("cert", "key")):
        if (one in settings) != (other in settings):
            missing = other if one in settings else one
            raise reader.fail(child_key(key, missing),
                              f"{one} and {other} go together: {missing} is missing")
    return EtcdConfig(endpoints=endpoints, prefix=prefix, **settings)
