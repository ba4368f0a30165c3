# -*- test-case-name: tests.test_cache_rules -*-
"""
The cache key (RFC 9111 section 2: scheme, host and target; the method is
left out, so a HEAD is answered from a stored GET) and the secondary key
of a C{Vary} variant (section 4.1).
"""

from __future__ import annotations

import re
from typing import Callable, List, Optional, Sequence, Tuple

from lbproxy.cache.directives import header_values

__all__ = ["primary_key", "variant", "vary_names"]

_COMMA = re.compile(rb"[ \t]*,[ \t]*")

#: C{getRawHeaders}-like: a header's values, or L{None}.
HeaderGetter = Callable[[bytes], Optional[List[bytes]]]


def primary_key(scheme: bytes, host: bytes, target: bytes) -> bytes:
    """
    C{scheme://host/target}, the host lower case (the target is compared
    as sent: RFC 9111 lets a cache normalize it no further than the URI
    rules, and the proxy already refused malformed ones).
    """
    return scheme + b"://" + host.lower() + target


def vary_names(headers: Sequence[Tuple[bytes, bytes]]) -> Tuple[bytes, ...]:
    """
    The request header names a response varies on, lower case, sorted,
    each once (a stored C{Vary: *} never gets here: L{refusal} refuses it).
    """
    names = set()
    for value in header_values(headers, b"vary"):
        for name in value.split(b","):
            name = name.strip().lower()
            if name:
                names.add(name)
    return tuple(sorted(names))


def variant(names: Tuple[bytes, ...], get: HeaderGetter) -> Tuple[Optional[bytes], ...]:
    """
    A request's values of the headers C{names}, normalized as section
    4.1 allows (several lines joined with commas, whitespace around commas
    removed); L{None} for an absent header (which matches only absence).
    """
    values: List[Optional[bytes]] = []
    for name in names:
        raw = get(name)
        if raw is None:
            values.append(None)
        else:
            values.append(_COMMA.sub(b",", b",".join(v.strip() for v in raw)))
    return tuple(values)
