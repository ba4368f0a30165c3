# -*- test-case-name: tests.test_edgeconfig -*-
"""
A route's C{cors} table: which origins may read its responses, and what
preflights may ask for.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import hostname_problem, method_check
from lbproxy.wire.http1 import is_token

__all__ = ["CorsConfig", "parse_cors"]

_MAX_CORS_AGE = 86400
_CORS_KEYS = (
    "credentials",
    "expose_headers",
    "headers",
    "max_age",
    "methods",
    "origins",
)
_ORIGIN = re.compile(
    r"^([a-z][a-z0-9+.-]*)://(\[[^\]/]*\]|[^/:?#\[\]@]*)(?::([0-9]*))?(.*)$", re.DOTALL
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@dataclass(frozen=True)
class CorsConfig:
    """
    A route's C{cors} table.

    @ivar origins: Allowed origins (lower case, without default port), or
        C{("*",)}.
    @ivar methods: Methods preflights may ask for, or C{("*",)}.
    @ivar headers: Request headers preflights may ask for, or C{("*",)}.
    @ivar credentials: Whether credentialed requests are shared.
    @ivar max_age: Seconds browsers may cache a preflight's answer.
    @ivar expose_headers: Response headers scripts may read.
    """

    origins: Tuple[str, ...]
    methods: Tuple[str, ...] = ("GET", "HEAD", "POST")
    headers: Tuple[str, ...] = ()
    credentials: bool = False
    max_age: int = 600
    expose_headers: Tuple[str, ...] = ()


def parse_cors(value: Any, key: str, reader: Reader) -> CorsConfig:
    """
    A route's C{cors} table: C{origins} (required), C{methods}, C{headers},
    C{credentials}, C{max_age} and C{expose_headers}.
    """
    table = reader.table(value, key, _CORS_KEYS)
    origins_key = child_key(key, "origins")
    origins = reader.strings(
        reader.required(table, key, "origins"),
        origins_key,
        'e.g. ["https://app.example"]',
        _origin(reader),
    )
    if "*" in origins and len(origins) > 1:
        raise reader.fail(
            f"{origins_key}[{origins.index('*')}]",
            '"*" allows every origin: it cannot be listed with others',
        )
    settings: Dict[str, Any] = {"origins": origins}
    credentials = False
    if "credentials" in table:
        credentials = reader.boolean(table["credentials"], child_key(key, "credentials"))
        if credentials and origins == ("*",):
            raise reader.fail(
                child_key(key, "credentials"),
                'cannot be true with origins = ["*"]: browsers never share a '
                "credentialed response with a wildcard origin; list the origins",
            )
    settings["credentials"] = credentials
    if "methods" in table:
        settings["methods"] = reader.strings(
            table["methods"], child_key(key, "methods"), 'e.g. ["GET", "POST"]',
            method_check(reader, wildcard=True),
        )
    for name in ("headers", "expose_headers"):
        if name in table:
            item_key = child_key(key, name)
            items = reader.array(table[name], item_key, 'e.g. ["Content-Type"]')
            settings[name] = (
                reader.strings(items, item_key, "", _header(reader)) if items else ()
            )
    expose = settings.get("expose_headers", ())
    if credentials and "*" in expose:
        raise reader.fail(
            f"{child_key(key, 'expose_headers')}[{expose.index('*')}]",
            '"*" exposes nothing to credentialed requests (Fetch); list the headers',
        )
    if "max_age" in table:
        settings["max_age"] = reader.integer(
            table["max_age"], child_key(key, "max_age"), 0, _MAX_CORS_AGE
        )
    return CorsConfig(**settings)


def _header(reader: Reader) -> Callable[[str, str], str]:
    """
    A check for L{Reader.strings} of header names, or C{"*"}.
    """

    def check(text: str, item_key: str) -> str:
        if text == "*":
            return text
        if not is_token(text):
            raise reader.fail(
                item_key,
                f"invalid header name {quote(text)} (letters, digits and "
                "!#$%&'*+-.^_`|~ only)",
            )
        return text

    return check


def _origin(reader: Reader) -> Callable[[str, str], str]:
    """
    A check for L{Reader.strings} of origins, or C{"*"}: returns them in
    lower case, without the scheme's default port.
    """

    def check(text: str, item_key: str) -> str:
        if text == "*":
            return text
        if text.strip().lower() == "null":
            raise reader.fail(
                item_key,
                'the "null" origin is sent by sandboxed documents and local '
                "files of any site; it cannot be allowed",
            )
        lowered = text.strip().lower()
        match = _ORIGIN.match(lowered)
        if not match:
            raise reader.fail(
                item_key,
                f'invalid origin {quote(text)} (expected "*" or '
                '"scheme://host[:port]", e.g. "https://app.example")',
            )
        scheme, host, port, rest = match.groups()
        if rest and rest[0] not in "/?#":
            raise reader.fail(
                item_key,
                f'invalid origin {quote(text)} (expected "scheme://host[:port]", '
                'e.g. "https://app.example")',
            )
        if rest:
            raise reader.fail(
                item_key,
                f"origin {quote(text)} must not have a path, query or trailing "
                f'"/" (an origin is "scheme://host[:port]")',
            )
        if "*" in host:
            raise reader.fail(
                item_key,
                f'origin {quote(text)}: only exact origins or "*" are supported',
            )
        if host.startswith("["):
            try:
                host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
            except ValueError:
                raise reader.fail(
                    item_key, f"origin {quote(text)}: invalid IPv6 address"
                ) from None
        else:
            problem = hostname_problem(host)
            if problem:
                raise reader.fail(item_key, f"origin {quote(text)}: {problem}")
        if port is not None:
            if not port or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise reader.fail(item_key, f"origin {quote(text)}: invalid port")
            if _DEFAULT_PORTS.get(scheme) == int(port):
                port = None
        return f"{scheme}://{host}" + (f":{int(port)}" if port else "")

    return check
