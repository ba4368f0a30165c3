# -*- test-case-name: tests.test_config_reader -*-
"""
The one reader of typed values that every section of the configuration
uses: tables with known keys, arrays, strings, booleans, bounded integers,
numbers, sizes, file names and endpoint strings.

Each check, and so each error message, exists once, here.  A L{Reader}
knows the file it reads so that every L{ConfigError} names it; the key
path of each value is passed in (C{"pools.web.targets[0]"}), built with
L{child_key} and C{f"{key}[{index}]"}.
"""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping as _MappingABC
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from twisted.internet.endpoints import serverFromString

from lbproxy.config.errors import ConfigError, child_key, describe, quote

__all__ = ["Reader"]

_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kmg])i?)?b?\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_ENDPOINT_HINT = (
    'expected a Twisted endpoint string such as "tcp:8080" or '
    '"tcp:8080:interface=127.0.0.1"'
)


class _NoReactor:
    """
    Stands in for the reactor while endpoints are constructed to validate
    their description strings; constructing an endpoint does not use it.
    """


_NO_REACTOR = _NoReactor()


class Reader:
    """
    Checks values of one parsed TOML document and raises a L{ConfigError}
    naming the file and the key for the first one that is wrong.

    Every method takes the value and its key path, and returns the value
    checked (and for some, converted).

    @ivar path: The file name errors are reported against; relative file
        names in the configuration are relative to its directory.
    """

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, key: str, reason: str) -> ConfigError:
        """
        The error to raise for the value at C{key}.

        @param key: Its key path, C{""} for the whole document.
        @param reason: What is wrong with it.
        """
        return ConfigError(self.path, key, reason)

    # -- tables and arrays ---------------------------------------------------

    def table(
        self, value: Any, key: str, known: Optional[Sequence[str]] = None
    ) -> Mapping[str, Any]:
        """
        A table, with only the keys in C{known} (any keys if L{None}); an
        unknown key is reported with the closest known one.
        """
        if not isinstance(value, _MappingABC):
            raise self.fail(key, f"expected a table, got {describe(value)}")
        if known is not None:
            for name in value:
                if name not in known:
                    close = difflib.get_close_matches(str(name), known, n=1)
                    hint = f'did you mean "{close[0]}"? ' if close else ""
                    raise self.fail(
                        child_key(key, str(name)),
                        f"unknown key ({hint}known: {', '.join(sorted(known))})",
                    )
        return value

    def required(self, table: Mapping[str, Any], key: str, name: str) -> Any:
        """
        The value of C{name} in the table at C{key}, which must be there.
        """
        if name not in table:
            raise self.fail(child_key(key, name), "required key is missing")
        return table[name]

    def array(self, value: Any, key: str, example: str) -> Sequence[Any]:
        """
        An array, of anything.

        @param example: What the array should look like, for the error
            (C{'e.g. ["GET", "POST"]'}).
        """
        if not isinstance(value, (list, tuple)):
            raise self.fail(key, f"expected an array ({example}), got {describe(value)}")
        return value

    def strings(
        self,
        value: Any,
        key: str,
        example: str,
        check: Callable[[str, str], str],
    ) -> Tuple[str, ...]:
        """
        A non-empty array of distinct strings.

        @param example: What the array should look like, for the error.
        @param check: Called with each string and its key path; returns it
            checked and normalized (distinctness is of what it returns), or
            raises.
        """
        items = self.array(value, key, example)
        if not items:
            raise self.fail(key, "must not be empty")
        result: List[str] = []
        seen: Dict[str, int] = {}
        for index, item in enumerate(items):
            item_key = f"{key}[{index}]"
            checked = check(self.string(item, item_key), item_key)
            if checked in seen:
                raise self.fail(
                    item_key,
                    f"{quote(checked)} is listed twice (also {key}[{seen[checked]}])",
                )
            seen[checked] = index
            result.append(checked)
        return tuple(result)

    # -- scalars -------------------------------------------------------------

    def string(self, value: Any, key: str) -> str:
        """
        A string, possibly empty.
        """
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {describe(value)}")
        return value

    def nonempty_string(self, value: Any, key: str) -> str:
        """
        A string with something but whitespace in it (returned unstripped).
        """
        text = self.string(value, key)
        if not text.strip():
            raise self.fail(key, "must not be empty")
        return text

    def boolean(self, value: Any, key: str) -> bool:
        """
        C{true} or C{false}.
        """
        if not isinstance(value, bool):
            raise self.fail(key, f"expected a boolean (true or false), got {describe(value)}")
        return value

    def integer(
        self, value: Any, key: str, minimum: int, maximum: Optional[int] = None
    ) -> int:
        """
        An integer (not a boolean) from C{minimum} to C{maximum} inclusive,
        or without upper bound if C{maximum} is L{None}.
        """
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            if maximum is None:
                wanted = f"at least {minimum}"
            else:
                wanted = f"from {minimum} to {maximum}"
            raise self.fail(key, f"must be {wanted}, got {value}")
        return value

    def number(self, value: Any, key: str) -> float:
        """
        An integer or a float (not a boolean), returned as written; the
        caller checks its range.
        """
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {describe(value)}")
        return value

    def positive_number(self, value: Any, key: str) -> float:
        """
        A finite number greater than 0, as a float: durations in seconds.
        """
        number = self.number(value, key)
        if not math.isfinite(number):
            raise self.fail(key, f"must be a finite number, got {number!r}")
        if number <= 0:
            raise self.fail(key, f"must be greater than 0, got {number!r}")
        return float(number)

    def size(self, value: Any, key: str) -> int:
        """
        A size in bytes: an integer, or a string with a unit (C{"512k"},
        C{"10m"}, C{"1g"}, powers of 1024); 0 means no limit.
        """
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise self.fail(key, f"must be at least 0, got {value}")
            return value
        if isinstance(value, str):
            match = _SIZE.match(value)
            if match:
                return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
        raise self.fail(
            key,
            'expected a size in bytes (1048576) or with a unit ("512k", "10m", "1g"), '
            f"got {describe(value)}",
        )

    def file(self, value: Any, key: str) -> str:
        """
        A file name, relative to the configuration file's directory unless
        absolute.  The file is not looked at.

        @return: The file name, joined to that directory if relative.
        """
        text = self.nonempty_string(value, key)
        if "\0" in text:
            raise self.fail(key, "file name must not contain NUL")
        if os.path.isabs(text):
            return text
        return os.path.join(os.path.dirname(self.path), text)

    # -- endpoints -----------------------------------------------------------

    def endpoint(self, value: Any, key: str) -> str:
        """
        A Twisted server endpoint string, checked by constructing (not
        listening on) its endpoint.
        """
        description = self.string(value, key)
        if not description.strip():
            raise self.fail(key, f"empty endpoint string ({_ENDPOINT_HINT})")
        try:
            endpoint = serverFromString(_NO_REACTOR, description)
        except Exception as e:
            # ValueError (bad number, unknown type), TypeError (missing or
            # unexpected argument), KeyError, OSError (ssl: missing key or
            # certificate file), ...
            detail = str(e) or type(e).__name__
            raise self.fail(
                key,
                f"invalid endpoint {quote(description)}: {detail} ({_ENDPOINT_HINT})",
            ) from None
        port = getattr(endpoint, "_port", None)
        if isinstance(port, int) and not 0 <= port <= 65535:
            raise self.fail(
                key,
                f"invalid endpoint {quote(description)}: "
                f"port must be from 0 to 65535, got {port}",
            )
        return description

    def unused_endpoint(self, value: Any, key: str, listens: Dict[str, str]) -> str:
        """
        An endpoint string (L{endpoint}) that nothing listed in C{listens}
        listens on yet; it is added there under C{key}.

        @param listens: endpoint strings already in use, mapped to the key
            that names each.
        """
        description = self.endpoint(value, key)
        if description in listens:
            raise self.fail(
                key, f"endpoint {quote(description)} is already used by {listens[description]}"
            )
        listens[description] = key
        return description

    def listen(self, value: Any, key: str) -> Tuple[str, ...]:
        """
        An endpoint string, or a non-empty array of distinct ones.
        """
        if isinstance(value, str):
            return (self.endpoint(value, key),)
        if not isinstance(value, (list, tuple)):
            raise self.fail(
                key,
                "expected an endpoint string or an array of them "
                f'(e.g. ["tcp:8080"]), got {describe(value)}',
            )
        if not value:
            raise self.fail(key, "at least one endpoint is required")
        seen: Dict[str, int] = {}
        for index, item in enumerate(value):
            item_key = f"{key}[{index}]"
            description = self.endpoint(item, item_key)
            if description in seen:
                raise self.fail(
                    item_key,
                    f"endpoint {quote(description)} is listed twice "
                    f"(also {key}[{seen[description]}])",
                )
            seen[description] = index
        return tuple(value)
