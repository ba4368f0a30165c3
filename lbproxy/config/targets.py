# -*- test-case-name: tests.test_config -*-
"""
Backend servers: L{Target}, and the ways a configuration writes one
(C{"host:port"}, C{"http://host[:port]"}, C{"https://host[:port]"}, or a
table with an C{address}, a C{weight} and a C{health_check_endpoint}).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping as _MappingABC
from dataclasses import dataclass
from typing import Any, Optional

from lbproxy.config.errors import child_key, describe, quote
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import hostname_problem
from lbproxy.config.tls import UpstreamTLS

__all__ = ["TARGET_FORMS", "Target", "parse_target", "parse_target_entry"]

#: How a target is written, for errors.
TARGET_FORMS = '"host:port", "http://host:port" or "https://host:port"'

_MAX_WEIGHT = 1000
_TARGET_KEYS = ("address", "health_check_endpoint", "weight")
_SCHEME_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)


@dataclass(frozen=True)
class Target:
    """
    One backend server.

    @ivar scheme: C{"http"} or C{"https"}.
    @ivar host: Lower-cased host name or IP literal (IPv6 without brackets).
    @ivar port: TCP port, 1 to 65535.
    @ivar weight: Relative share of requests, 0 to 1000 (0: no new
        clients, but those a sticky session pins to it stay).
    @ivar health_check_endpoint: Path probed by health checks (starts with
        C{"/"}), or L{None} for no probing.
    @ivar tls: For an C{https} target, its pool's TLS settings, or L{None}
        for the defaults (see L{lbproxy.config.tls.UpstreamTLS}).
    """

    scheme: str
    host: str
    port: int
    weight: int = 1
    health_check_endpoint: Optional[str] = None
    tls: Optional[UpstreamTLS] = None

    def __post_init__(self) -> None:
        # Read on every request: computed once (not a dataclass field).
        if ":" in self.host:
            address = f"[{self.host}]:{self.port}"
        else:
            address = f"{self.host}:{self.port}"
        object.__setattr__(self, "_address", address)

    @property
    def address(self) -> str:
        """
        C{"host:port"} (C{"[::1]:8080"} for IPv6); a target's identity.
        """
        return self._address

    @property
    def url(self) -> str:
        """
        C{"scheme://host:port"}, the base URL requests are forwarded to.
        """
        return f"{self.scheme}://{self.address}"


def parse_target_entry(value: Any, key: str, reader: Reader) -> Target:
    """
    A target given as a string, or as a table with C{address}, C{weight}
    and C{health_check_endpoint}.
    """
    if isinstance(value, str):
        return parse_target(value, key, reader)
    if not isinstance(value, _MappingABC):
        raise reader.fail(
            key,
            f"expected a target string ({TARGET_FORMS}) or a table with "
            f"an address, got {describe(value)}",
        )
    reader.table(value, key, _TARGET_KEYS)
    address_key = child_key(key, "address")
    address = reader.string(reader.required(value, key, "address"), address_key)
    target = parse_target(address, address_key, reader)
    weight = 1
    if "weight" in value:
        weight = reader.integer(value["weight"], child_key(key, "weight"), 0, _MAX_WEIGHT)
    health = None
    if "health_check_endpoint" in value:
        health_key = child_key(key, "health_check_endpoint")
        health = reader.string(value["health_check_endpoint"], health_key)
        if not health.startswith("/"):
            raise reader.fail(health_key, f'must start with "/", got {quote(health)}')
        if any(c.isspace() for c in health):
            raise reader.fail(health_key, "must not contain whitespace")
    return Target(
        scheme=target.scheme,
        host=target.host,
        port=target.port,
        weight=weight,
        health_check_endpoint=health,
    )


def parse_target(text: str, key: str, reader: Reader) -> Target:
    """
    Parse C{"host:port"}, C{"http://host[:port]"} or
    C{"https://host[:port]"}; IPv6 hosts go in brackets.
    """
    original = text
    text = text.strip()
    if not text:
        raise reader.fail(key, f"empty target address (expected {TARGET_FORMS})")
    if any(c.isspace() for c in text):
        raise reader.fail(key, f"target {quote(original)} contains whitespace")

    url = _SCHEME_URL.match(text)
    if url:
        scheme = url.group(1).lower()
        if scheme not in ("http", "https"):
            raise reader.fail(
                key,
                f"unsupported scheme {quote(scheme)} in target "
                f"{quote(original)} (use http or https)",
            )
        rest = url.group(2)
        cut = min([rest.find(c) for c in "/?#" if c in rest] or [len(rest)])
        authority, tail = rest[:cut], rest[cut:]
        if tail not in ("", "/"):
            raise reader.fail(
                key,
                f"target {quote(original)} must not have a path, query or "
                "fragment: lbproxy forwards the client's own path",
            )
    else:
        if "://" in text:
            raise reader.fail(
                key, f"invalid scheme in target {quote(original)} (use http or https)"
            )
        if any(c in text for c in "/?#"):
            raise reader.fail(
                key,
                f"target {quote(original)} must not have a path, query or "
                f"fragment (expected {TARGET_FORMS})",
            )
        scheme = None
        authority = text
    if "@" in authority:
        raise reader.fail(
            key, f"target {quote(original)} must not contain user information"
        )

    if authority.startswith("["):
        end = authority.find("]")
        if end == -1:
            raise reader.fail(key, f"unclosed '[' in target {quote(original)}")
        literal = authority[1:end]
        try:
            host = str(ipaddress.IPv6Address(literal))
        except ValueError:
            raise reader.fail(
                key, f"invalid IPv6 address {quote(literal)} in target"
            ) from None
        after = authority[end + 1 :]
        if after == "":
            port_text: Optional[str] = None
        elif after.startswith(":"):
            port_text = after[1:]
        else:
            raise reader.fail(
                key,
                f"unexpected {quote(after)} after the IPv6 address in "
                f'target {quote(original)} (expected "[addr]:port")',
            )
    else:
        if authority.count(":") > 1:
            raise reader.fail(
                key,
                f"target {quote(original)}: IPv6 addresses must be in "
                'brackets, e.g. "[::1]:8080"',
            )
        host, colon, port_text_or_empty = authority.partition(":")
        port_text = port_text_or_empty if colon else None
        host = host.lower()
        problem = hostname_problem(host)
        if problem:
            raise reader.fail(key, f"target {quote(original)}: {problem}")

    if port_text is None:
        if scheme is None:
            raise reader.fail(
                key,
                f"target {quote(original)} has no port (expected "
                '"host:port", e.g. "127.0.0.1:8080")',
            )
        port = 443 if scheme == "https" else 80
    else:
        port = _port(port_text, key, original, reader)
    return Target(scheme=scheme or "http", host=host, port=port)


def _port(text: str, key: str, original: str, reader: Reader) -> int:
    if not text:
        raise reader.fail(key, f"target {quote(original)} has an empty port after ':'")
    if not (text.isascii() and text.isdigit()):
        raise reader.fail(
            key,
            f"target {quote(original)}: port must be a number from 1 to "
            f"65535, got {quote(text)}",
        )
    port = int(text)
    if not 1 <= port <= 65535:
        raise reader.fail(
            key,
            f"target {quote(original)}: port must be from 1 to 65535, got {port}",
        )
    return port
