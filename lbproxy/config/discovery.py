# -*- test-case-name: tests.test_feed -*-
"""
A pool's C{discovery} table: where its targets come from besides the file.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = ["parse_discovery"]


def parse_discovery(value: Any, key: str, reader: Reader) -> str:
    """
    C{discovery = { websocket = "ws://agent:7000/backends" }}.

    @return: The feed's URL (C{ws://} or C{wss://}, with a host and port).
    """
    table = reader.table(value, key, ("websocket",))
    url_key = child_key(key, "websocket")
    url = reader.nonempty_string(reader.required(table, key, "websocket"), url_key)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise reader.fail(url_key, f"not a URL ({e}): {quote(url)}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise reader.fail(url_key, f'expected "ws://host:port/path" (or wss://), got {quote(url)}')
    if port is None:
        raise reader.fail(url_key, f"the URL needs a port: {quote(url)}")
    return url
