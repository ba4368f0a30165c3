# -*- test-case-name: tests.test_cache_rules -*-
"""
RFC 9111's arithmetic and decisions, without the reactor: whether a
response may be stored (section 3), its freshness lifetime (4.2.1, with
heuristics only where 4.2.2 allows them), its age (4.2.3), and what a
request may be answered with (4.2, 4.2.4, 5.2.1; RFC 5861 for
C{stale-while-revalidate} and C{stale-if-error}).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from lbproxy.cache.directives import (
    Directives,
    delta_seconds,
    header_values,
    parse_http_date,
)

__all__ = [
    "BACKGROUND",
    "FRESH",
    "STALE",
    "VALIDATE",
    "current_age",
    "forbids_stale",
    "freshness_lifetime",
    "is_static",
    "judge",
    "refusal",
    "window",
    "worthless",
]

#: Status codes "heuristically cacheable" (RFC 9110 section 15.1), less 206
#: (lbproxy stores no partial content).
HEURISTIC_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
#: RFC 9111 section 4.2.2: "a typical setting of this fraction might be 10%".
HEURISTIC_FRACTION = 0.1
#: lbproxy's upper bound on a heuristic lifetime (one day).
HEURISTIC_MAX = 86400.0

#: Answers to a lookup (L{judge}).
FRESH = "fresh"
STALE = "stale"  # stale, but the request allows it (max-stale)
BACKGROUND = "background"  # stale within stale-while-revalidate
VALIDATE = "validate"  # ask the backend first

_STATIC_EXTENSIONS = frozenset(
    "css js mjs map png jpg jpeg gif webp avif svg ico bmp woff woff2 ttf otf eot".split()
)
_STATIC_TYPES = (b"image/", b"font/", b"text/css", b"text/javascript",
                 b"application/javascript", b"application/x-javascript",
                 b"application/font-", b"application/vnd.ms-fontobject")


def _has(headers: Sequence[Tuple[bytes, bytes]], name: bytes) -> bool:
    for key, _ in headers:
        if key.lower() == name:
            return True
    return False


def refusal(
    method: bytes,
    status: int,
    requestCC: Directives,
    authorized: bool,
    responseCC: Directives,
    headers: Sequence[Tuple[bytes, bytes]],
) -> Optional[str]:
    """
    Why a response may not be stored in a shared cache (RFC 9111 section
    3, 3.5), or L{None} if the directives and headers allow it (whether it
    has any freshness or validator is L{worthless}'s question).
    """
    if method != b"GET":
        return "only GET responses are stored"
    if status < 200 or status in (206, 304):
        return "status %d is not stored" % (status,)
    if "no-store" in requestCC:
        return "request Cache-Control: no-store"
    if "no-store" in responseCC:
        return "response Cache-Control: no-store"
    if "private" in responseCC:
        return "response Cache-Control: private"
    for value in header_values(headers, b"vary"):
        if b"*" in [v.strip() for v in value.split(b",")]:
            return "Vary: *"
    shared = "public" in responseCC or "s-maxage" in responseCC or "must-revalidate" in responseCC
    if authorized and not shared:
        return "request has Authorization and response is not public"
    if not shared and _has(headers, b"set-cookie"):
        return "response has Set-Cookie and is not public"
    if (
        status not in HEURISTIC_STATUSES
        and "public" not in responseCC
        and delta_seconds(responseCC, "s-maxage") is None
        and delta_seconds(responseCC, "max-age") is None
        and not _has(headers, b"expires")
    ):
        return "status %d needs explicit freshness" % (status,)
    return None


def is_static(path: bytes, headers: Sequence[Tuple[bytes, bytes]]) -> bool:
    """
    Whether a response is a static resource (style sheet, script, image,
    font) by its path's extension or its C{Content-Type}.
    """
    last = path.split(b"?", 1)[0].rsplit(b"/", 1)[-1]
    if b"." in last:
        if last.rsplit(b".", 1)[1].lower().decode("latin-1") in _STATIC_EXTENSIONS:
            return True
    for value in header_values(headers, b"content-type"):
        media = value.split(b";", 1)[0].strip().lower()
        if media.startswith(_STATIC_TYPES):
            return True
    return False


def freshness_lifetime(
    status: int,
    responseCC: Directives,
    headers: Sequence[Tuple[bytes, bytes]],
    responseTime: float,
    staticTtl: float = 0.0,
    static: bool = False,
) -> Tuple[float, str]:
    """
    A stored response's freshness lifetime in seconds and where it came
    from (RFC 9111 section 4.2.1: C{s-maxage}, then C{max-age}, then
    C{Expires} minus C{Date}); without any of these, the route's
    C{static_ttl} for a static resource, else a heuristic (10% of the time
    since C{Last-Modified}, at most a day) where section 4.2.2 allows one.
    """
    for name in ("s-maxage", "max-age"):
        seconds = delta_seconds(responseCC, name)
        if seconds is not None:
            return float(seconds), name
    expires = header_values(headers, b"expires")
    if expires:
        when = parse_http_date(expires[0])
        if when is None:
            # An invalid date (e.g. "0") means already expired.
            return 0.0, "expires"
        dates = header_values(headers, b"date")
        date = parse_http_date(dates[0]) if dates else None
        return max(0.0, when - (date if date is not None else responseTime)), "expires"
    if static and staticTtl > 0:
        return float(staticTtl), "static_ttl"
    if status in HEURISTIC_STATUSES or "public" in responseCC:
        modified = header_values(headers, b"last-modified")
        if modified:
            when = parse_http_date(modified[0])
            dates = header_values(headers, b"date")
            date = parse_http_date(dates[0]) if dates else None
            if when is not None:
                since = (date if date is not None else responseTime) - when
                if since > 0:
                    return min(since * HEURISTIC_FRACTION, HEURISTIC_MAX), "heuristic"
    return 0.0, "none"


def worthless(lifetime: float, headers: Sequence[Tuple[bytes, bytes]]) -> bool:
    """
    Whether a response has neither freshness nor a validator: storing it
    could never answer a request nor save a transfer.
    """
    return lifetime <= 0 and not _has(headers, b"etag") and not _has(headers, b"last-modified")


def current_age(
    ageValue: float, dateValue: Optional[float], requestTime: float, responseTime: float,
    now: float,
) -> float:
    """
    RFC 9111 section 4.2.3's C{current_age}.

    @param ageValue: the response's C{Age} header (0 if none).
    @param dateValue: its C{Date}, or L{None} (then taken as
        C{responseTime}: no apparent age).
    @param requestTime: when the request that got it was sent.
    @param responseTime: when the response was received.
    """
    if dateValue is None:
        dateValue = responseTime
    apparentAge = max(0.0, responseTime - dateValue)
    responseDelay = responseTime - requestTime
    correctedAgeValue = ageValue + responseDelay
    correctedInitialAge = max(apparentAge, correctedAgeValue)
    residentTime = now - responseTime
    return correctedInitialAge + residentTime


def forbids_stale(responseCC: Directives) -> bool:
    """
    Whether the response forbids a shared cache to answer with it once
    stale (RFC 9111 section 4.2.4: C{must-revalidate}, C{proxy-revalidate},
    C{s-maxage}, C{no-cache}).
    """
    return (
        "must-revalidate" in responseCC
        or "proxy-revalidate" in responseCC
        or "s-maxage" in responseCC
        or "no-cache" in responseCC
    )


def judge(
    age: float, lifetime: float, responseCC: Directives, requestCC: Directives,
    staleWhileRevalidate: float,
) -> str:
    """
    What a request may be answered with, given a stored response of age
    C{age}: L{FRESH}, L{STALE} (the request's C{max-stale} accepts it),
    L{BACKGROUND} (within C{stale-while-revalidate}: answer, and refresh
    in the background) or L{VALIDATE} (ask the backend first).
    """
    if "no-cache" in responseCC or "no-cache" in requestCC:
        return VALIDATE
    maxAge = delta_seconds(requestCC, "max-age")
    if maxAge is not None and age > maxAge:
        return VALIDATE
    minFresh = delta_seconds(requestCC, "min-fresh") or 0
    if lifetime > age + minFresh:
        return FRESH
    if forbids_stale(responseCC):
        return VALIDATE
    staleness = age - lifetime
    if "max-stale" in requestCC:
        maxStale = requestCC["max-stale"]
        if maxStale is None or (maxStale.isdigit() and staleness <= int(maxStale)):
            return STALE
    if staleWhileRevalidate > 0 and staleness <= staleWhileRevalidate and staleness >= 0:
        return BACKGROUND
    return VALIDATE


def window(responseCC: Directives, name: str, configured: float) -> float:
    """
    A stale window (C{stale-while-revalidate}, C{stale-if-error}): the
    response's directive (RFC 5861) if valid, else the route's setting.
    """
    seconds = delta_seconds(responseCC, name)
    return float(seconds) if seconds is not None else configured
