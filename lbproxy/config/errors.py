# -*- test-case-name: tests.test_config_reader -*-
"""
Configuration errors, and how they name keys and values.

A L{ConfigError} names the file, the offending key as TOML would write it
(L{child_key}), and the reason, in which values are shown with L{quote}
and L{describe}.  This module is the bottom of L{lbproxy.config}: it
imports nothing of lbproxy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping as _MappingABC
from typing import Any

__all__ = ["ConfigError", "child_key", "describe", "quote"]

#: A TOML bare key, written without quotes.
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+\Z")


class ConfigError(Exception):
    """
    The configuration is missing, unreadable or invalid.

    @ivar path: The configuration file the error is about.
    @ivar key: The dotted key path of the offending value, as TOML would name
        it (for example C{"pools.mango.targets[1]"}), or C{""} when the error
        is about the whole file (unreadable file, TOML syntax error).
    @ivar reason: What is wrong, for an operator to read.
    """

    def __init__(self, path: str, key: str, reason: str) -> None:
        Exception.__init__(self, path, key, reason)
        self.path = path
        self.key = key
        self.reason = reason

    def __str__(self) -> str:
        if self.key:
            return f"{self.path}: {self.key}: {self.reason}"
        return f"{self.path}: {self.reason}"


def child_key(parent: str, name: str) -> str:
    """
    The key path of C{name} inside the table at C{parent}, quoting C{name}
    the way TOML would if it is not a bare key.

    @param parent: The table's key path, C{""} for the document.
    @param name: A key of that table.
    @return: For example C{"pools.web"}, C{'pools."my pool"'} or C{"server"}.
    """
    part = name if _BARE_KEY.match(name) else json.dumps(name, ensure_ascii=False)
    return f"{parent}.{part}" if parent else part


def quote(text: str, limit: int = 80) -> str:
    """
    C{text} in double quotes, escaped, shortened if very long.

    @param limit: The most characters of C{text} shown.
    """
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return json.dumps(text, ensure_ascii=False)


def describe(value: Any) -> str:
    """
    Describe a TOML value's type (and the value, if short) for an error.
    """
    if isinstance(value, bool):
        return "boolean " + ("true" if value else "false")
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value!r}"
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, _MappingABC):
        return "a table"
    if isinstance(value, (list, tuple)):
        return "an array"
    if hasattr(value, "isoformat"):
        return f"date/time {value.isoformat()}"
    return type(value).__name__
