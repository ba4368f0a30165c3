# -*- test-case-name: tests.test_edgeconfig -*-
"""
The configuration of the edge policies: rate limits, access rules, CORS,
header rules and trusted proxies.

Pure, like L{lbproxy.config}: TOML values in, frozen values out.  Each
C{parse_*} function takes the value, its key path (C{"rate_limit"},
C{"routes[2].access"}) and C{fail(key, reason)}, which returns the
L{lbproxy.config.ConfigError} to raise, so errors name the file and the
exact key like every other configuration error.  A global table and a
route's inline table have the same shape and go through the same function.

L{lbproxy.runtime.policies} turns a parsed configuration into the policy
objects that run per request.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from collections.abc import Mapping as _MappingABC
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from lbproxy.policy.access import compile_network
from lbproxy.policy.headerrules import HeaderRules, Template, header_name
from lbproxy.wire.http1 import is_token
from lbproxy.policy.passwd import parse_hash

__all__ = [
    "AccessConfig",
    "BasicAuthConfig",
    "CorsConfig",
    "FORWARDED_HEADERS",
    "HeaderRulesConfig",
    "RateLimitConfig",
    "parse_access",
    "parse_cors",
    "parse_forwarded_header",
    "parse_header_rules",
    "parse_rate_limit",
    "parse_trusted_proxies",
]

#: C{fail(key, reason)}: the exception to raise for an invalid value.
Fail = Callable[[str, str], Exception]

#: The values accepted for the header trusted proxies write.
FORWARDED_HEADERS: Tuple[str, ...] = ("x-forwarded-for", "forwarded")

_MAX_RATE = 1_000_000.0
_MAX_BURST = 1_000_000
_MAX_CORS_AGE = 86400
_DEFAULT_REALM = "lbproxy"

_RATE_LIMIT_KEYS = ("burst", "rate")
_ACCESS_KEYS = ("allow", "basic_auth", "blocked_paths", "deny", "methods")
_BASIC_AUTH_KEYS = ("realm", "users")
_CORS_KEYS = (
    "credentials",
    "expose_headers",
    "headers",
    "max_age",
    "methods",
    "origins",
)
_HEADER_RULE_KEYS = (
    "request_add",
    "request_remove",
    "request_set",
    "response_add",
    "response_remove",
    "response_set",
)

_ORIGIN = re.compile(
    r"^([a-z][a-z0-9+.-]*)://(\[[^\]/]*\]|[^/:?#\[\]@]*)(?::([0-9]*))?(.*)$", re.DOTALL
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_HEX = frozenset("0123456789abcdefABCDEF")


# -- values --------------------------------------------------------------------


@dataclass(frozen=True)
class RateLimitConfig:
    """
    A C{rate_limit} table.

    @ivar rate: Requests per second per client address, sustained.
    @ivar burst: Requests a client may make at once after a quiet spell.
    """

    rate: float
    burst: int


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


@dataclass(frozen=True)
class HeaderRulesConfig:
    """
    A route's C{headers} table.  Set and add rules are C{(name, value
    template)} pairs in file order (an array value in an add table gives
    one pair per item); remove rules are names.
    """

    request_set: Tuple[Tuple[str, str], ...] = ()
    request_add: Tuple[Tuple[str, str], ...] = ()
    request_remove: Tuple[str, ...] = ()
    response_set: Tuple[Tuple[str, str], ...] = ()
    response_add: Tuple[Tuple[str, str], ...] = ()
    response_remove: Tuple[str, ...] = ()


# -- helpers -------------------------------------------------------------------


def _config():
    # lbproxy.config will import this module; import it back lazily.
    from lbproxy import config

    return config


def _child(parent: str, name: str) -> str:
    return _config()._child(parent, name)


def _describe(value: Any) -> str:
    return _config()._describe(value)


def _quote(text: str) -> str:
    return _config()._quote(text)


def _table(value: Any, key: str, fail: Fail, known: Sequence[str]) -> Mapping[str, Any]:
    if not isinstance(value, _MappingABC):
        raise fail(key, f"expected a table, got {_describe(value)}")
    for name in value:
        if name not in known:
            close = difflib.get_close_matches(str(name), known, n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            raise fail(
                _child(key, str(name)),
                f"unknown key ({hint}known: {', '.join(sorted(known))})",
            )
    return value


def _array(value: Any, key: str, fail: Fail, example: str) -> Sequence[Any]:
    if not isinstance(value, (list, tuple)):
        raise fail(key, f"expected an array ({example}), got {_describe(value)}")
    return value


def _string(value: Any, key: str, fail: Fail) -> str:
    if not isinstance(value, str):
        raise fail(key, f"expected a string, got {_describe(value)}")
    return value


def _boolean(value: Any, key: str, fail: Fail) -> bool:
    if not isinstance(value, bool):
        raise fail(key, f"expected a boolean (true or false), got {_describe(value)}")
    return value


def _integer(value: Any, key: str, fail: Fail, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(key, f"expected an integer, got {_describe(value)}")
    if not minimum <= value <= maximum:
        raise fail(key, f"must be from {minimum} to {maximum}, got {value}")
    return value


def _strings(
    value: Any, key: str, fail: Fail, example: str, check: Callable[[str, str], str]
) -> Tuple[str, ...]:
    """
    A non-empty array of distinct strings, each passed through C{check(text,
    item_key)}.
    """
    items = _array(value, key, fail, example)
    if not items:
        raise fail(key, "must not be empty")
    result: List[str] = []
    seen: Dict[str, int] = {}
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        checked = check(_string(item, item_key, fail), item_key)
        if checked in seen:
            raise fail(
                item_key, f"{_quote(checked)} is listed twice (also {key}[{seen[checked]}])"
            )
        seen[checked] = index
        result.append(checked)
    return tuple(result)


def _networks(value: Any, key: str, fail: Fail) -> Tuple[str, ...]:
    def check(text: str, item_key: str) -> str:
        text = text.strip()
        try:
            return str(compile_network(text))
        except ValueError:
            pass
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        else:
            if "%" not in text:
                raise fail(
                    item_key,
                    f"network {_quote(text)} has host bits set "
                    f"(did you mean {_quote(str(loose))}?)",
                )
        raise fail(
            item_key,
            f"invalid network {_quote(text)}: expected an IPv4 or IPv6 "
            'address or CIDR, e.g. "10.0.0.0/8", "10.1.2.3" or "2001:db8::/32"',
        )

    return _strings(value, key, fail, 'e.g. ["10.0.0.0/8", "2001:db8::/32"]', check)


def _method(fail: Fail, wildcard: bool = False) -> Callable[[str, str], str]:
    def check(text: str, item_key: str) -> str:
        if wildcard and text == "*":
            return text
        if not is_token(text):
            raise fail(
                item_key,
                f"invalid method {_quote(text)} (a method is a token: letters, "
                "digits and !#$%&'*+-.^_`|~, no spaces)",
            )
        if text != text.upper():
            raise fail(
                item_key,
                f"method {_quote(text)} is not upper case (methods are "
                f"case-sensitive; did you mean {_quote(text.upper())}?)",
            )
        return text

    return check


def _header(fail: Fail, wildcard: bool = False) -> Callable[[str, str], str]:
    def check(text: str, item_key: str) -> str:
        if wildcard and text == "*":
            return text
        if not is_token(text):
            raise fail(
                item_key,
                f"invalid header name {_quote(text)} (letters, digits and "
                "!#$%&'*+-.^_`|~ only)",
            )
        return text

    return check


def _blocked_path(fail: Fail) -> Callable[[str, str], str]:
    """
    Check a blocked path and normalize it as request paths are (RFC 3986
    section 6.2.2): percent-encoded unreserved characters decoded, other
    escapes in upper case, repeated slashes merged, no trailing slash.
    """

    def check(path: str, item_key: str) -> str:
        if not path.startswith("/"):
            raise fail(item_key, f'must start with "/", got {_quote(path)}')
        if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in path):
            raise fail(
                item_key,
                f"path {_quote(path)} must not contain whitespace or control characters",
            )
        if "?" in path or "#" in path:
            raise fail(item_key, f"path {_quote(path)} must not contain a query or fragment")
        out: List[str] = []
        i = 0
        while i < len(path):
            c = path[i]
            if c == "%":
                escape = path[i + 1 : i + 3]
                if len(escape) != 2 or not set(escape) <= _HEX:
                    raise fail(
                        item_key,
                        f"path {_quote(path)} has an invalid percent-escape at "
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
            raise fail(item_key, f'path {_quote(path)} must not contain "." or ".." segments')
        if len(normalized) > 1 and normalized.endswith("/"):
            normalized = normalized[:-1]
        return normalized

    return check


# -- rate_limit ----------------------------------------------------------------


def parse_rate_limit(value: Any, key: str, fail: Fail) -> Optional[RateLimitConfig]:
    """
    A C{rate_limit} table: C{rate} (requests per second per client,
    required) and C{burst} (default: one second's worth, at least 1).

    @return: The limit, or L{None} for C{rate_limit = false} (a route
        turning the global limit off).
    """
    if value is False:
        return None
    table = _table(value, key, fail, _RATE_LIMIT_KEYS)
    rate_key = _child(key, "rate")
    if "rate" not in table:
        raise fail(rate_key, "required key is missing")
    rate = table["rate"]
    if isinstance(rate, bool) or not isinstance(rate, (int, float)):
        raise fail(rate_key, f"expected a number, got {_describe(rate)}")
    if not (math.isfinite(rate) and 0 < rate <= _MAX_RATE):
        raise fail(rate_key, f"must be greater than 0 and at most {_MAX_RATE:g}, got {rate!r}")
    if "burst" in table:
        burst = _integer(table["burst"], _child(key, "burst"), fail, 1, _MAX_BURST)
    else:
        burst = max(1, math.ceil(rate))
    return RateLimitConfig(rate=float(rate), burst=burst)


# -- access --------------------------------------------------------------------


def parse_access(value: Any, key: str, fail: Fail) -> AccessConfig:
    """
    An C{access} table: C{allow}, C{deny} (arrays of addresses or CIDRs),
    C{blocked_paths} (array of path prefixes), C{methods} (array of
    methods) and C{basic_auth} (a table with C{realm} and C{users}), all
    optional.
    """
    table = _table(value, key, fail, _ACCESS_KEYS)
    settings: Dict[str, Any] = {}
    for name in ("allow", "deny"):
        if name in table:
            item_key = _child(key, name)
            if isinstance(table[name], (list, tuple)) and not table[name]:
                raise fail(
                    item_key,
                    f"must not be empty (omit {name} to "
                    + ("allow every address)" if name == "allow" else "deny none)"),
                )
            settings[name] = _networks(table[name], item_key, fail)
    if "blocked_paths" in table:
        settings["blocked_paths"] = _strings(
            table["blocked_paths"],
            _child(key, "blocked_paths"),
            fail,
            'e.g. ["/admin", "/.git"]',
            _blocked_path(fail),
        )
    if "methods" in table:
        settings["methods"] = _strings(
            table["methods"], _child(key, "methods"), fail, 'e.g. ["GET", "POST"]', _method(fail)
        )
    if "basic_auth" in table:
        settings["basic_auth"] = _basic_auth(table["basic_auth"], _child(key, "basic_auth"), fail)
    return AccessConfig(**settings)


def _basic_auth(value: Any, key: str, fail: Fail) -> BasicAuthConfig:
    table = _table(value, key, fail, _BASIC_AUTH_KEYS)
    realm = _DEFAULT_REALM
    if "realm" in table:
        realm_key = _child(key, "realm")
        realm = _string(table["realm"], realm_key, fail)
        if not realm.strip():
            raise fail(realm_key, "must not be empty")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in realm):
            raise fail(realm_key, "must not contain control characters")
    users_key = _child(key, "users")
    if "users" not in table:
        raise fail(users_key, "required key is missing")
    users = table["users"]
    if not isinstance(users, _MappingABC):
        raise fail(
            users_key,
            'expected a table of user name = password hash, e.g. { alice = '
            f'"pbkdf2_sha256$..." }}, got {_describe(users)}',
        )
    if not users:
        raise fail(users_key, "at least one user is required")
    checked: Dict[str, str] = {}
    for name, stored in users.items():
        user_key = _child(users_key, name)
        if not name or ":" in name or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
            raise fail(
                user_key,
                "a user name must be non-empty, without \":\" or control "
                "characters (RFC 7617)",
            )
        line = _string(stored, user_key, fail)
        try:
            parse_hash(line)
        except ValueError as e:
            raise fail(user_key, f"invalid password hash: {e}") from None
        checked[name] = line
    return BasicAuthConfig(realm=realm, users=MappingProxyType(checked))


# -- cors ------------------------------------------------------------------------


def _origin(fail: Fail) -> Callable[[str, str], str]:
    def check(text: str, item_key: str) -> str:
        if text == "*":
            return text
        if text.strip().lower() == "null":
            raise fail(
                item_key,
                'the "null" origin is sent by sandboxed documents and local '
                "files of any site; it cannot be allowed",
            )
        lowered = text.strip().lower()
        match = _ORIGIN.match(lowered)
        if not match:
            raise fail(
                item_key,
                f'invalid origin {_quote(text)} (expected "*" or '
                '"scheme://host[:port]", e.g. "https://app.example")',
            )
        scheme, host, port, rest = match.groups()
        if rest and rest[0] not in "/?#":
            raise fail(
                item_key,
                f'invalid origin {_quote(text)} (expected "scheme://host[:port]", '
                'e.g. "https://app.example")',
            )
        if rest:
            raise fail(
                item_key,
                f"origin {_quote(text)} must not have a path, query or trailing "
                f'"/" (an origin is "scheme://host[:port]")',
            )
        if "*" in host:
            raise fail(
                item_key,
                f'origin {_quote(text)}: only exact origins or "*" are supported',
            )
        if host.startswith("["):
            try:
                host = f"[{ipaddress.IPv6Address(host[1:-1])}]"
            except ValueError:
                raise fail(item_key, f"origin {_quote(text)}: invalid IPv6 address") from None
        else:
            problem = _config()._hostname_problem(host)
            if problem:
                raise fail(item_key, f"origin {_quote(text)}: {problem}")
        if port is not None:
            if not port or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise fail(item_key, f"origin {_quote(text)}: invalid port")
            if _DEFAULT_PORTS.get(scheme) == int(port):
                port = None
        return f"{scheme}://{host}" + (f":{int(port)}" if port else "")

    return check


def parse_cors(value: Any, key: str, fail: Fail) -> CorsConfig:
    """
    A route's C{cors} table: C{origins} (required), C{methods}, C{headers},
    C{credentials}, C{max_age} and C{expose_headers}.
    """
    table = _table(value, key, fail, _CORS_KEYS)
    origins_key = _child(key, "origins")
    if "origins" not in table:
        raise fail(origins_key, "required key is missing")
    origins = _strings(
        table["origins"], origins_key, fail, 'e.g. ["https://app.example"]', _origin(fail)
    )
    if "*" in origins and len(origins) > 1:
        raise fail(
            f"{origins_key}[{origins.index('*')}]",
            '"*" allows every origin: it cannot be listed with others',
        )
    settings: Dict[str, Any] = {"origins": origins}
    credentials = False
    if "credentials" in table:
        credentials = _boolean(table["credentials"], _child(key, "credentials"), fail)
        if credentials and origins == ("*",):
            raise fail(
                _child(key, "credentials"),
                'cannot be true with origins = ["*"]: browsers never share a '
                "credentialed response with a wildcard origin; list the origins",
            )
    settings["credentials"] = credentials
    if "methods" in table:
        settings["methods"] = _strings(
            table["methods"], _child(key, "methods"), fail, 'e.g. ["GET", "POST"]',
            _method(fail, wildcard=True),
        )
    for name in ("headers", "expose_headers"):
        if name in table:
            item_key = _child(key, name)
            items = _array(table[name], item_key, fail, 'e.g. ["Content-Type"]')
            settings[name] = (
                _strings(items, item_key, fail, "", _header(fail, wildcard=True))
                if items
                else ()
            )
    expose = settings.get("expose_headers", ())
    if credentials and "*" in expose:
        raise fail(
            f"{_child(key, 'expose_headers')}[{expose.index('*')}]",
            '"*" exposes nothing to credentialed requests (Fetch); list the headers',
        )
    if "max_age" in table:
        settings["max_age"] = _integer(
            table["max_age"], _child(key, "max_age"), fail, 0, _MAX_CORS_AGE
        )
    return CorsConfig(**settings)


# -- headers ---------------------------------------------------------------------


def parse_header_rules(value: Any, key: str, fail: Fail) -> HeaderRulesConfig:
    """
    A route's C{headers} table: C{request_set}, C{request_add},
    C{response_set}, C{response_add} (tables of header name to value; an add
    value may be an array, one header per item) and C{request_remove},
    C{response_remove} (arrays of header names).
    """
    table = _table(value, key, fail, _HEADER_RULE_KEYS)
    settings: Dict[str, Any] = {}
    for direction in ("request", "response"):
        set_name, add_name, remove_name = (
            f"{direction}_set",
            f"{direction}_add",
            f"{direction}_remove",
        )
        if set_name in table:
            settings[set_name] = _rule_table(
                table[set_name], _child(key, set_name), fail, direction, False
            )
        if add_name in table:
            settings[add_name] = _rule_table(
                table[add_name], _child(key, add_name), fail, direction, True
            )
        if remove_name in table:
            remove_key = _child(key, remove_name)
            items = _array(table[remove_name], remove_key, fail, 'e.g. ["Server"]')
            names: List[str] = []
            for index, item in enumerate(items):
                item_key = f"{remove_key}[{index}]"
                name = _rule_name(_string(item, item_key, fail), item_key, fail)
                if direction == "request" and name.lower() == "host":
                    raise fail(item_key, "Host cannot be removed from requests")
                names.append(name)
            settings[remove_name] = tuple(names)
    config = HeaderRulesConfig(**settings)
    try:
        # The rules together, as the proxy will compile them.
        HeaderRules(
            requestSet=config.request_set,
            requestAdd=config.request_add,
            requestRemove=config.request_remove,
            responseSet=config.response_set,
            responseAdd=config.response_add,
            responseRemove=config.response_remove,
        )
    except ValueError as e:  # pragma: no cover - each rule was checked above
        raise fail(key, str(e)) from None
    return config


def _rule_name(name: str, key: str, fail: Fail) -> str:
    try:
        header_name(name)
    except ValueError as e:
        raise fail(key, str(e)) from None
    return name


def _rule_table(
    value: Any, key: str, fail: Fail, direction: str, add: bool
) -> Tuple[Tuple[str, str], ...]:
    if not isinstance(value, _MappingABC):
        raise fail(
            key,
            'expected a table of header name = value, e.g. { "X-Env" = "prod" }, '
            f"got {_describe(value)}",
        )
    pairs: List[Tuple[str, str]] = []
    seen: Dict[str, str] = {}
    for name, template in value.items():
        name_key = _child(key, name)
        _rule_name(name, name_key, fail)
        lower = name.lower()
        if lower in seen:
            raise fail(name_key, f"header {_quote(name)} is also given as {_quote(seen[lower])}")
        seen[lower] = name
        if direction == "request" and add and lower == "host":
            raise fail(name_key, "Host cannot be added to requests (use request_set)")
        if add and isinstance(template, (list, tuple)):
            templates = [
                (f"{name_key}[{index}]", item) for index, item in enumerate(template)
            ]
        else:
            templates = [(name_key, template)]
        for template_key, item in templates:
            if not isinstance(item, str):
                expected = "a string or an array of strings" if add else "a string"
                raise fail(template_key, f"expected {expected}, got {_describe(item)}")
            try:
                Template(item)
            except ValueError as e:
                raise fail(template_key, str(e)) from None
            pairs.append((name, item))
    return tuple(pairs)


# -- client address ------------------------------------------------------------


def parse_trusted_proxies(value: Any, key: str, fail: Fail) -> Tuple[str, ...]:
    """
    C{trusted_proxies}: an array of addresses or CIDRs of proxies whose
    forwarding header is believed; empty for none.
    """
    items = _array(value, key, fail, 'e.g. ["10.0.0.0/8"]')
    if not items:
        return ()
    return _networks(items, key, fail)


def parse_forwarded_header(value: Any, key: str, fail: Fail) -> str:
    """
    Which header trusted proxies write: C{"x-forwarded-for"} (the default
    to use when absent) or C{"forwarded"} (RFC 7239), in any case.
    """
    text = _string(value, key, fail).strip().lower()
    if text not in FORWARDED_HEADERS:
        raise fail(
            key,
            f"expected one of {', '.join(_quote(h) for h in FORWARDED_HEADERS)}, "
            f"got {_quote(value)}",
        )
    return text
