# -*- test-case-name: tests.test_edgeconfig -*-
"""
An C{access} table, global (C{[access]}) or a route's: allowed and denied
networks, blocked paths, allowed methods and basic authentication.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as _MappingABC
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from lbproxy.config.errors import child_key, describe, quote
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import method_check, networks, path_prefix_problem
from lbproxy.policy.passwd import parse_hash

__all__ = ["AccessConfig", "BasicAuthConfig", "parse_access"]

_DEFAULT_REALM = "lbproxy"
_ACCESS_KEYS = ("allow", "basic_auth", "blocked_paths", "deny", "methods")
_BASIC_AUTH_KEYS = ("realm", "users")
_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class BasicAuthConfig:
    """
    An C{access.basic_auth} table.

    @ivar realm: The realm named in the challenge.
    @ivar users: User name to password hash line (see L{lbproxy.policy.passwd}).
    """

    realm: str
    users: Mapping[str, str]


@dataclass(frozen=True)
class AccessConfig:
    """
    An C{access} table.

    @ivar allow: Allowed networks, normalized (C{"10.0.0.0/8"},
        C{"10.1.2.3/32"}); empty for every address.
    @ivar deny: Denied networks, normalized.
    @ivar blocked_paths: Normalized path prefixes answered with 403.
    @ivar methods: Allowed methods, or L{None} for any.
    @ivar basic_auth: Basic authentication, or L{None}.
    """

    allow: Tuple[str, ...] = ()
    deny: Tuple[str, ...] = ()
    blocked_paths: Tuple[str, ...] = ()
    methods: Optional[Tuple[str, ...]] = None
    basic_auth: Optional[BasicAuthConfig] = None


def parse_access(value: Any, key: str, reader: Reader) -> AccessConfig:
    """
    An C{access} table: C{allow}, C{deny} (arrays of addresses or CIDRs),
    C{blocked_paths} (array of path prefixes), C{methods} (array of
    methods) and C{basic_auth} (a table with C{realm} and C{users}), all
    optional.
    """
    table = reader.table(value, key, _ACCESS_KEYS)
    settings: Dict[str, Any] = {}
    for name in ("allow", "deny"):
        if name in table:
            item_key = child_key(key, name)
            if isinstance(table[name], (list, tuple)) and not table[name]:
                raise reader.fail(
                    item_key,
                    f"must not be empty (omit {name} to "
                    + ("allow every address)" if name == "allow" else "deny none)"),
                )
            settings[name] = networks(table[name], item_key, reader)
    if "blocked_paths" in table:
        settings["blocked_paths"] = reader.strings(
            table["blocked_paths"],
            child_key(key, "blocked_paths"),
            'e.g. ["/admin", "/.git"]',
            _blocked_path(reader),
        )
    if "methods" in table:
        settings["methods"] = reader.strings(
            table["methods"], child_key(key, "methods"), 'e.g. ["GET", "POST"]',
            method_check(reader),
        )
    if "basic_auth" in table:
        settings["basic_auth"] = _basic_auth(
            table["basic_auth"], child_key(key, "basic_auth"), reader
        )
    return AccessConfig(**settings)


def _blocked_path(reader: Reader) -> Callable[[str, str], str]:
    """
    Check a blocked path and normalize it as request paths are (RFC 3986
    section 6.2.2): percent-encoded unreserved characters decoded, other
    escapes in upper case, repeated slashes merged, no trailing slash.
    """

    def check(path: str, item_key: str) -> str:
        problem = path_prefix_problem(path)
        if problem:
            raise reader.fail(item_key, problem)
        out: List[str] = []
        i = 0
        while i < len(path):
            c = path[i]
            if c == "%":
                escape = path[i + 1 : i + 3]
                if len(escape) != 2 or not set(escape) <= _HEX:
                    raise reader.fail(
                        item_key,
                        f"path {quote(path)} has an invalid percent-escape at "
                        f"offset {i}",
                    )
                char = chr(int(escape, 16))
                out.append(char if char in _UNRESERVED else "%" + escape.upper())
                i += 3
            else:
                out.append(c)
                i += 1
        normalized = re.sub("/{2,}", "/", "".join(out))
        if any(segment in (".", "..") for segment in normalized.split("/")):
            raise reader.fail(
                item_key, f'path {quote(path)} must not contain "." or ".." segments'
            )
        if len(normalized) > 1 and normalized.endswith("/"):
            normalized = normalized[:-1]
        return normalized

    return check


def _basic_auth(value: Any, key: str, reader: Reader) -> BasicAuthConfig:
    table = reader.table(value, key, _BASIC_AUTH_KEYS)
    realm = _DEFAULT_REALM
    if "realm" in table:
        realm_key = child_key(key, "realm")
        realm = reader.nonempty_string(table["realm"], realm_key)
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in realm):
            raise reader.fail(realm_key, "must not contain control characters")
    users_key = child_key(key, "users")
    users = reader.required(table, key, "users")
    if not isinstance(users, _MappingABC):
        raise reader.fail(
            users_key,
            'expected a table of user name = password hash, e.g. { alice = '
            f'"pbkdf2_sha256$..." }}, got {describe(users)}',
        )
    if not users:
        raise reader.fail(users_key, "at least one user is required")
    checked: Dict[str, str] = {}
    for name, stored in users.items():
        user_key = child_key(users_key, name)
        if not name or ":" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise reader.fail(
                user_key,
                "a user name must be non-empty, without \":\" or control "
                "characters (RFC 7617)",
            )
        line = reader.string(stored, user_key)
        try:
            parse_hash(line)
        except ValueError as e:
            raise reader.fail(user_key, f"invalid password hash: {e}") from None
        checked[name] = line
    return BasicAuthConfig(realm=realm, users=MappingProxyType(checked))
