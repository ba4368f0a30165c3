# -*- test-case-name: tests.test_cache_rules -*-
"""
C{Cache-Control} directives (RFC 9111 section 5.2) and HTTP dates (RFC 9110
section 5.6.7), parsed without the reactor.
"""

from __future__ import annotations

from email.utils import formatdate, parsedate_tz, mktime_tz
from typing import Dict, Iterable, List, Optional, Tuple

__all__ = [
    "Directives",
    "delta_seconds",
    "format_http_date",
    "header_values",
    "parse_cache_control",
    "parse_http_date",
]

Directives = Dict[str, Optional[str]]

#: RFC 9111 section 1.2.2: a delta-seconds too large to represent is
#: taken as 2^31.
MAX_DELTA = 2147483648


def header_values(headers: Iterable[Tuple[bytes, bytes]], name: bytes) -> List[bytes]:
    """
    Every value of one header, in order (C{name} lower case).
    """
    return [value for key, value in headers if key.lower() == name]


def _split(values: Iterable[bytes]) -> List[str]:
    """
    The comma-separated members of every value, a comma inside a quoted
    string kept.
    """
    members: List[str] = []
    for raw in values:
        text = raw.decode("latin-1")
        current = []
        quoted = False
        escaped = False
        for c in text:
            if escaped:
                escaped = False
            elif quoted and c == "\\":
                escaped = True
            elif c == '"':
                quoted = not quoted
            elif c == "," and not quoted:
                members.append("".join(current).strip())
                current = []
                continue
            current.append(c)
        members.append("".join(current).strip())
    return [m for m in members if m]


def parse_cache_control(values: Iterable[bytes]) -> Directives:
    """
    The directives of every C{Cache-Control} value: lower-case names, the
    argument unquoted or L{None}.  A directive given twice keeps its first
    argument (RFC 9111 section 4.2.1 lets a cache treat duplicates as
    invalid; the first is the conservative reading for C{max-age}).
    """
    directives: Directives = {}
    for member in _split(values):
        name, sep, argument = member.partition("=")
        name = name.strip().lower()
        if not name or name in directives:
            continue
        value: Optional[str] = None
        if sep:
            value = argument.strip()
            if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
                value = value[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        directives[name] = value
    return directives


def delta_seconds(directives: Directives, name: str) -> Optional[int]:
    """
    A directive's delta-seconds argument, or L{None} when the directive is
    absent or its argument is not a non-negative integer (an invalid
    C{max-age} is then ignored, never taken as 0 or as forever).
    """
    value = directives.get(name)
    if value is None or not value.isdigit():
        return None
    return min(int(value), MAX_DELTA)


def parse_http_date(value: Optional[bytes]) -> Optional[float]:
    """
    An HTTP date (IMF-fixdate, and the obsolete RFC 850 and asctime forms)
    as seconds since the epoch, or L{None} if it is not a valid date.
    """
    if not value:
        return None
    try:
        parsed = parsedate_tz(value.decode("latin-1"))
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        return float(mktime_tz(parsed))
    except (ValueError, OverflowError):
        return None


def format_http_date(when: float) -> bytes:
    """
    C{when} (seconds since the epoch) as an IMF-fixdate.
    """
    return formatdate(when, usegmt=True).encode("ascii")
