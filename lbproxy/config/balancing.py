# -*- test-case-name: tests.test_config_balancing -*-
"""
The balancing keys of a C{[pools.NAME]} table beyond C{balance}:
C{hash_key} and C{hash_balance_factor} (C{balance = "hash"}), C{sticky}
(sticky sessions) and C{weights} (score-driven weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = [
    "BALANCING_KEYS",
    "SCORE_SOURCES",
    "ScoreWeights",
    "Sticky",
    "parse_balancing",
]

#: The pool keys this module reads.
BALANCING_KEYS = ("hash_key", "hash_balance_factor", "sticky", "weights")

#: Where score-driven weights come from.
SCORE_SOURCES = ("header", "probe", "latency")

_STICKY_KEYS = ("cookie", "ttl", "secret", "secure", "http_only")
_WEIGHTS_KEYS = ("from", "name", "field", "interval", "smoothing", "min", "max")
_HASH_KEY_FORMS = 'client_ip, path, uri, "header:NAME" or "cookie:NAME"'
_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


@dataclass(frozen=True)
class Sticky:
    """
    Sticky sessions: a client's first answer sets a signed cookie that
    names its target; later requests with it go to that target while it
    is usable.

    @ivar cookie: the cookie's name.
    @ivar ttl: seconds a cookie is valid (its C{Max-Age}, and checked from
        the signed issue time).
    @ivar secret: the signing key (the same in every worker and every
        instance behind one name), or L{None} for a random key of each
        process (cookies then hold only within one process and until a
        restart).
    @ivar secure: whether the cookie is sent with C{Secure}.
    @ivar http_only: whether the cookie is sent with C{HttpOnly}.
    """

    cookie: str = "lb"
    ttl: int = 3600
    secret: Optional[str] = None
    secure: bool = False
    http_only: bool = True


@dataclass(frozen=True)
class ScoreWeights:
    """
    Score-driven weights: each target's effective weight follows a score,
    recomputed every C{interval} seconds.

    @ivar source: C{"header"} (a number the backend puts on its responses,
        header C{name}), C{"probe"} (a number in the health probe's JSON
        body, key C{field}) or C{"latency"} (inverse of an EWMA of the
        target's upstream time).
    @ivar name: the response header, for C{"header"}.
    @ivar field: the JSON key, for C{"probe"}.
    @ivar interval: seconds between recomputations.
    @ivar smoothing: how much of a new score goes into the weight each
        interval (0 < smoothing <= 1; 1: no smoothing).
    @ivar min: the lowest effective weight, as a fraction of the configured
        weight (above 0: no healthy target drops to nothing).
    @ivar max: the highest, as a multiple of the configured weight.
    """

    source: str
    name: Optional[str] = None
    field: Optional[str] = None
    interval: float = 10.0
    smoothing: float = 0.5
    min: float = 0.1
    max: float = 10.0


def parse_balancing(table: Mapping[str, Any], key: str, reader: Reader, balance: str) -> Dict[str, Any]:
    """
    The balancing keys of the pool table C{table} at C{key}, as keyword
    arguments of L{lbproxy.config.pools.Pool}.
    """
    settings: Dict[str, Any] = {}
    for name in ("hash_key", "hash_balance_factor"):
        if name in table and balance != "hash":
            raise reader.fail(
                child_key(key, name), f'only applies to balance = "hash" (this pool: {quote(balance)})'
            )
    if "hash_key" in table:
        settings["hash_key"] = _hash_key(table["hash_key"], child_key(key, "hash_key"), reader)
    if "hash_balance_factor" in table:
        factor_key = child_key(key, "hash_balance_factor")
        factor = reader.number(table["hash_balance_factor"], factor_key)
        if not (math.isfinite(factor) and (factor == 0 or 1 < factor <= 100)):
            raise reader.fail(
                factor_key, f"must be 0 (no bound) or above 1 and at most 100, got {factor!r}"
            )
        settings["hash_balance_factor"] = float(factor)
    if "sticky" in table:
        settings["sticky"] = _sticky(table["sticky"], child_key(key, "sticky"), reader)
    if "weights" in table:
        settings["weights"] = _weights(table["weights"], child_key(key, "weights"), reader)
    return settings


def _hash_key(value: Any, key: str, reader: Reader) -> str:
    text = reader.string(value, key)
    if text in ("client_ip", "path", "uri"):
        return text
    source, colon, name = text.partition(":")
    if not colon or source not in ("header", "cookie"):
        raise reader.fail(key, f"unknown hash key {quote(text)} (expected {_HASH_KEY_FORMS})")
    if not name or not set(name) <= _TOKEN_CHARS:
        raise reader.fail(key, f"{quote(text)}: {source} name {quote(name)} is not a valid token")
    return text


def _sticky(value: Any, key: str, reader: Reader) -> Sticky:
    table = reader.table(value, key, _STICKY_KEYS)
    settings: Dict[str, Any] = {}
    if "cookie" in table:
        cookie_key = child_key(key, "cookie")
        name = reader.nonempty_string(table["cookie"], cookie_key)
        if not set(name) <= _TOKEN_CHARS:
            raise reader.fail(cookie_key, f"cookie name {quote(name)} is not a valid token")
        settings["cookie"] = name
    if "ttl" in table:
        settings["ttl"] = reader.integer(table["ttl"], child_key(key, "ttl"), 1, 400 * 86400)
    if "secret" in table:
        secret_key = child_key(key, "secret")
        secret = reader.nonempty_string(table["secret"], secret_key)
        if len(secret) < 16:
            raise reader.fail(secret_key, "must be at least 16 characters (use a long random string)")
        settings["secret"] = secret
    for flag in ("secure", "http_only"):
        if flag in table:
            settings[flag] = reader.boolean(table[flag], child_key(key, flag))
    return Sticky(**settings)


def _weights(value: Any, key: str, reader: Reader) -> ScoreWeights:
    table = reader.table(value, key, _WEIGHTS_KEYS)
    from_key = child_key(key, "from")
    source = reader.string(reader.required(table, key, "from"), from_key)
    if source not in SCORE_SOURCES:
        raise reader.fail(
            from_key, f"unknown source {quote(source)} (allowed: {', '.join(SCORE_SOURCES)})"
        )
    settings: Dict[str, Any] = {"source": source}
    needs = {"header": "name", "probe": "field"}.get(source)
    for name in ("name", "field"):
        if name in table and name != needs:
            raise reader.fail(child_key(key, name), f'does not apply to from = "{source}"')
    if needs is not None:
        needs_key = child_key(key, needs)
        settings[needs] = reader.nonempty_string(reader.required(table, key, needs), needs_key)
        if needs == "name" and not set(settings[needs]) <= _TOKEN_CHARS:
            raise reader.fail(needs_key, f"header name {quote(settings[needs])} is not a valid token")
    if "interval" in table:
        settings["interval"] = reader.positive_number(table["interval"], child_key(key, "interval"))
    if "smoothing" in table:
        smoothing_key = child_key(key, "smoothing")
        smoothing = reader.positive_number(table["smoothing"], smoothing_key)
        if smoothing > 1:
            raise reader.fail(smoothing_key, f"must be above 0 and at most 1, got {smoothing!r}")
        settings["smoothing"] = smoothing
    if "min" in table:
        settings["min"] = reader.positive_number(table["min"], child_key(key, "min"))
    if "max" in table:
        settings["max"] = reader.positive_number(table["max"], child_key(key, "max"))
    low = settings.get("min", ScoreWeights.min)
    high = settings.get("max", ScoreWeights.max)
    if low > 1 or high < 1:
        raise reader.fail(
            key, f"min must be at most 1 and max at least 1 (a multiple of the weight), got {low!r} and {high!r}"
        )
    return ScoreWeights(**settings)
