# -*- test-case-name: tests.test_accesslog -*-
"""
One line per request: who asked what, where it went, how it ended.

Format (fields separated by spaces, strings quoted)::

    127.0.0.1 "GET /mango HTTP/1.1" 200 31 host="www.mango.com" pool=mango
    target=127.0.0.1:8081 time=0.0021 upstream=0.0014

C{pool} and C{target} are C{-} when the request never reached one;
C{id} (last, when request ids are on) is the request's C{X-Request-Id};
C{upstream} is the time from picking a target to the end of the backend's
response (C{-} without a backend). A client that went away before the
response was complete is logged with status 499, as nginx does.
"""

from __future__ import annotations

import sys
from typing import IO, Optional


def _quote(value: str) -> str:
    """
    Quote a client-supplied string: backslash and double quote escaped,
    and every non-printable character written as C{\\xHH}, C{\\uHHHH} or
    C{\\UHHHHHHHH}, so a request can neither forge a line nor make two
    different values log alike.
    """
    if value.isprintable() and "\\" not in value and '"' not in value:
        return '"%s"' % (value,)
    return '"%s"' % ("".join(_escape(c) for c in value),)


def _escape(c: str) -> str:
    if c == "\\" or c == '"':
        return "\\" + c
    if c.isprintable():
        return c
    code = ord(c)
    if code <= 0xFF:
        return "\\x%02x" % (code,)
    if code <= 0xFFFF:
        return "\\u%04x" % (code,)
    return "\\U%08x" % (code,)


def format_line(
    client: str,
    method: str,
    uri: str,
    version: str,
    status: int,
    sent: int,
    host: Optional[str],
    pool: Optional[str],
    target: Optional[str],
    total: float,
    upstream: Optional[float],
    request_id: Optional[str] = None,
    cache: Optional[str] = None,
) -> str:
    """
    One access log line, without the newline. Control characters in
    client-supplied fields are escaped so a request cannot forge lines.

    @param cache: the C{X-Cache} label on a route with a cache.
    """
    request = "%s %s %s" % (method, uri, version)
    line = "%s %s %d %d host=%s pool=%s target=%s time=%.4f upstream=%s" % (
        client,
        _quote(request),
        status,
        sent,
        _quote(host) if host is not None else "-",
        pool or "-",
        target or "-",
        total,
        "%.4f" % (upstream,) if upstream is not None else "-",
    )
    if request_id is not None:
        line += " id=" + _quote(request_id)
    if cache is not None:
        line += " cache=" + cache
    return line


class AccessLog:
    """
    Writes access log lines to a text stream, flushing each line.

    @ivar format: the line format, a key of
        L{lbproxy.observe.logformats.FORMATS}.
    """

    def __init__(self, stream: IO[str], path: Optional[str] = None, form: str = "text") -> None:
        self._stream = stream
        self.path = path
        self.format = form

    def write(self, line: str) -> None:
        try:
            self._stream.write(line + "\n")
            self._stream.flush()
        except (OSError, ValueError):
            # A full disk or closed stdout must not fail requests.
            pass

    def reopen(self) -> None:
        """
        Reopen a file log (after log rotation moved the old file away).
        """
        if self.path is None:
            return
        old, self._stream = self._stream, open(self.path, "a", encoding="utf-8")
        old.close()

    def close(self) -> None:
        if self.path is not None:
            self._stream.close()


class LoggerAccessLog(AccessLog):
    """
    Access log lines as events of the C{twistd} log (the daemon's
    C{twistd.log}), for C{access_log = "-"} when standard output goes
    nowhere.
    """

    def __init__(self, form: str = "text", logger=None) -> None:
        AccessLog.__init__(self, None, None, form)
        if logger is None:
            from twisted.logger import Logger

            logger = Logger(namespace="lbproxy.access")
        self._logger = logger

    def write(self, line: str) -> None:
        self._logger.info("{line}", line=line)

    def reopen(self) -> None:
        pass

    def close(self) -> None:
        pass


def open_access_log(
    setting: Optional[str], form: str = "text", daemon: bool = False
) -> Optional[AccessLog]:
    """
    The access log for the C{server.access_log} setting: C{"-"} is standard
    output (the twistd log in daemon mode, where standard output is
    closed), L{None} is no log, anything else a file path (appended to).

    @param form: C{server.access_log_format}.
    @param daemon: whether twistd runs as a daemon (without C{-n}).
    """
    if setting is None:
        return None
    if setting == "-":
        if daemon:
            return LoggerAccessLog(form)
        return AccessLog(sys.__stdout__ or sys.stdout, form=form)
    return AccessLog(open(setting, "a", encoding="utf-8"), setting, form)
