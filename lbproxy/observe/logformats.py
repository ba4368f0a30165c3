# -*- test-case-name: tests.test_logformats -*-
"""
The access log's line formats (C{server.access_log_format}), each a
function of a finished request's context, or of a connection refused
before any request existed, and the time.

  - C{text} (the default): UTC time, then lbproxy's own line
    (L{lbproxy.observe.accesslog.format_line}), then C{reason=} when the
    request did not end in a plain forwarded answer::

        2026-11-30T23:59:59.123Z 127.0.0.1 "GET /mango HTTP/1.1" 200 31
        host="www.mango.com" pool=mango target=127.0.0.1:8081 time=0.0021
        upstream=0.0014

  - C{combined}: nginx's and Apache's combined format, for the tools that
    read it::

        127.0.0.1 - - [30/Nov/2026:23:59:59 +0000] "GET /mango HTTP/1.1" 200
        31 "-" "curl/8.5.0"

  - C{json}: one object per line (the fields are listed in
    docs/observability.md).

Client-supplied strings are escaped in every format: no request can
forge a line.
"""

from __future__ import annotations

import json
import time
from typing import Callable, Dict, Optional

from lbproxy.observe.accesslog import _quote, format_line
from lbproxy.observe.outcome import outcome

__all__ = ["FORMATS", "Stamp", "rejection_line"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Stamp:
    """
    Timestamps for log lines, the part down to the second formatted once
    per second.
    """

    def __init__(self) -> None:
        self._second = -1
        self._iso = ""
        self._clf = ""

    def _update(self, second: int) -> None:
        t = time.gmtime(second)
        self._second = second
        self._iso = "%04d-%02d-%02dT%02d:%02d:%02d" % t[:6]
        self._clf = "%02d/%s/%04d:%02d:%02d:%02d +0000" % (
            t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year, t.tm_hour, t.tm_min, t.tm_sec,
        )

    def iso(self, now: float) -> str:
        """
        C{2026-11-30T23:59:59.123Z}.
        """
        second = int(now)
        if second != self._second:
            self._update(second)
        return "%s.%03dZ" % (self._iso, int((now - second) * 1000))

    def clf(self, now: float) -> str:
        """
        C{30/Nov/2026:23:59:59 +0000} (the common log format's time).
        """
        second = int(now)
        if second != self._second:
            self._update(second)
        return self._clf


def _text(value: Optional[bytes]) -> Optional[str]:
    return value.decode("latin-1") if value is not None else None


def _route(context) -> Optional[str]:
    compiled = context.route
    if compiled is None:
        return None
    route = compiled.route
    return (route.host or "*") + route.path


def _since(mark: Optional[float], start: Optional[float]) -> Optional[float]:
    if mark is None or start is None:
        return None
    return round(mark - start, 6)


def text(context, now: float, stamp: Stamp) -> str:
    request = context.request
    requestId = context.requestId
    line = "%s %s" % (
        stamp.iso(now),
        format_line(
            context.clientIp,
            request.method.decode("latin-1"),
            request.uri.decode("latin-1"),
            request.clientproto.decode("latin-1"),
            context.status,
            context.sent,
            _text(context.hostHeader),
            context.pool,
            context.upstream,
            now - context.start,
            context.upstreamTime,
            requestId.decode("ascii") if requestId is not None else None,
            context.cacheStatus,
        ),
    )
    if context.local or context.status == 499 or context.status >= 500:
        flag = outcome(context)
        if flag is not None:
            line += " reason=" + flag
    return line


def combined(context, now: float, stamp: Stamp) -> str:
    request = context.request
    referer = request.getHeader(b"referer")
    agent = request.getHeader(b"user-agent")
    return '%s - - [%s] %s %d %s %s %s' % (
        context.clientIp,
        stamp.clf(now),
        _quote("%s %s %s" % (
            request.method.decode("latin-1"),
            request.uri.decode("latin-1"),
            request.clientproto.decode("latin-1"),
        )),
        context.status,
        context.sent if context.sent else "-",
        _quote(referer.decode("latin-1")) if referer is not None else '"-"',
        _quote(agent.decode("latin-1")) if agent is not None else '"-"',
    )


def as_json(context, now: float, stamp: Stamp) -> str:
    request = context.request
    agent = request.getHeader(b"user-agent")
    requestId = context.requestId
    start = context.upstreamStart
    tries = context.tries
    return json.dumps(
        {
            "time": stamp.iso(now),
            "client": context.clientIp,
            "method": request.method.decode("latin-1"),
            "target": request.uri.decode("latin-1"),
            "protocol": request.clientproto.decode("latin-1"),
            "status": context.status,
            "bytes": context.sent,
            "host": _text(context.hostHeader),
            "route": _route(context),
            "pool": context.pool,
            "upstream": context.upstream,
            "connect": _since(context.connected, start),
            "ttfb": _since(context.firstByte, start),
            "upstream_time": round(context.upstreamTime, 6)
            if context.upstreamTime is not None else None,
            "total": round(now - context.start, 6),
            "retries": tries - 1 if tries > 1 else 0,
            "request_id": requestId.decode("ascii") if requestId is not None else None,
            "user_agent": _text(agent),
            "cache": context.cacheStatus,
            "reason": outcome(context),
        },
        separators=(",", ":"),
    )


#: The formats by C{server.access_log_format}.
FORMATS: Dict[str, Callable] = {"text": text, "combined": combined, "json": as_json}


def rejection_line(form: str, now: float, stamp: Stamp, client: str, code: int,
                   reason: str) -> str:
    """
    The line of a connection refused before a request existed (400, 408,
    414, 431, the connection limit's 503): no method, target or host to
    tell.
    """
    if form == "json":
        return json.dumps(
            {
                "time": stamp.iso(now), "client": client, "method": None, "target": None,
                "protocol": None, "status": code, "bytes": 0, "host": None, "route": None,
                "pool": None, "upstream": None, "connect": None, "ttfb": None,
                "upstream_time": None, "total": 0, "retries": 0, "request_id": None,
                "user_agent": None, "reason": reason,
            },
            separators=(",", ":"),
        )
    if form == "combined":
        return '%s - - [%s] "-" %d - "-" "-"' % (client, stamp.clf(now), code)
    return '%s %s "-" %d 0 host=- pool=- target=- time=0.0000 upstream=- reason=%s' % (
        stamp.iso(now), client, code, reason,
    )
