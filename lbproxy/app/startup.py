# -*- test-case-name: tests.test_startup -*-
"""
Start-up as an operator sees it: the one line saying what started, the
one line (and a non-zero exit) when start-up fails, in the foreground and
as a daemon, the problems C{--check} finds before anything starts, and
the worker number on event lines.

Why the daemon case needs care: C{twistd} without C{-n} forks, and the
launching process waits on a pipe for the daemon's word.  Twisted writes
to that pipe when starting the application raises an L{Exception}, but a
L{SystemExit} passes by, the daemon ends without a word, and the
launching process (which keeps the pipe's write end open itself) waits
forever.  L{StartupReport.fail} writes the word itself.
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional

from twisted.logger import Logger

from lbproxy import __version__

__all__ = [
    "StartupReport", "announce_started", "config_problems", "open_log", "startup_line",
    "tag_events",
]

log = Logger()


def startup_line(config, role: str = "single") -> str:
    """
    C{lbproxy 0.1.0 started: 2 listeners (tcp:8080, ssl:8443), 3 pools,
    5 routes}, and the demo backends and workers if any.
    """
    listeners = list(config.server.listen)
    if config.tls is not None:
        listeners += list(config.tls.listen)
    parts = [
        "%d listener%s (%s)" % (len(listeners), "" if len(listeners) == 1 else "s",
                                ", ".join(listeners)),
        "%d pool%s" % (len(config.pools), "" if len(config.pools) == 1 else "s"),
        "%d route%s" % (len(config.routes), "" if len(config.routes) == 1 else "s"),
    ]
    if config.demo:
        parts.append("%d demo backend%s" % (len(config.demo), "" if len(config.demo) == 1 else "s"))
    if role == "main":
        parts.append("%d workers" % (config.server.workers,))
    return "lbproxy %s started: %s" % (__version__, ", ".join(parts))


def config_problems(config) -> List[str]:
    """
    What would stop start-up beyond the configuration's own checks: an
    access log file that cannot be opened for appending.
    """
    problems = []
    path = config.server.access_log
    if path is not None and path != "-":
        problem = _unwritable(path)
        if problem is not None:
            problems.append("server.access_log: %s: %s" % (path, problem))
    return problems


def _unwritable(path: str) -> Optional[str]:
    if os.path.isdir(path):
        return "is a directory"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "not writable"
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        return "directory %s does not exist" % (directory,)
    if not os.access(directory, os.W_OK | os.X_OK):
        return "cannot create it in %s" % (directory,)
    return None


class StartupReport:
    """
    Ends a failed start-up with one line and exit status 1.

    @ivar twistd: the twistd options (its C{pidfile}; C{statusPipe} is
        set there once it has forked), or L{None} (tests).
    @ivar daemon: whether twistd runs as a daemon.
    """

    def __init__(self, twistdConfig=None, stderr=None, daemon: bool = False) -> None:
        self.twistd = twistdConfig
        self.daemon = daemon
        self._stderr = stderr

    def fail(self, message: str) -> None:
        """
        Say C{message} and exit 1: on standard error in the foreground; as
        a daemon, in the twistd log and on the pipe the launching twistd
        reads (it then prints it and exits 1 instead of waiting forever).

        @raise SystemExit: always.
        """
        twistd = self.twistd
        if twistd is not None and twistd.get("pidfile"):
            # twistd removes it only when start-up raises an Exception.
            try:
                os.remove(twistd["pidfile"])
            except OSError:
                pass
        pipe = twistd.get("statusPipe") if twistd is not None and self.daemon else None
        if pipe is None:
            (self._stderr or sys.stderr).write("lbproxy: %s\n" % (message,))
        else:
            log.error("lbproxy: {message}", message=message)
            # twistd prints what follows the first two bytes (at most 100).
            data = b"1 " + message.encode("ascii", "backslashreplace")[:98]
            try:
                os.write(pipe, data)
                os.close(pipe)
            except OSError:
                pass
            twistd["statusPipe"] = None
        raise SystemExit(1)


def tag_events(name: str, publisher=None) -> None:
    """
    Put C{name} (C{"worker 2"}, C{"main"}) in the system field of every
    event line from now on: C{[worker 2 lbproxy.health.checker#info]}.
    Call before twistd starts its log observers, so this one runs first.
    """
    if publisher is None:
        from twisted.logger import globalLogPublisher as publisher

    def tag(event) -> None:
        system = event.get("log_system")
        if system is None:
            level = event.get("log_level")
            system = "%s#%s" % (event.get("log_namespace", "-"),
                                level.name if level is not None else "-")
        if not str(system).startswith(name):
            event["log_system"] = "%s %s" % (name, system)

    publisher.addObserver(tag)


def open_log(server, daemon: bool, report: StartupReport):
    """
    The access log of C{server} (L{open_access_log}), or one line and exit
    1 if it cannot be opened (checked while the options were parsed: this
    is the race after).

    @param daemon: whether twistd runs as a daemon (C{"-"} then goes to the
        twistd log).
    """
    from lbproxy.observe.accesslog import open_access_log

    try:
        return open_access_log(server.access_log, server.access_log_format, daemon)
    except OSError as e:
        report.fail("cannot open the access log %s: %s" % (server.access_log, e.strerror or e))


def announce_started(config, role: str, environ) -> None:
    """
    Every listener is bound: log the start-up line and tell systemd
    (C{READY=1}, the line as C{STATUS=}) when it started us.
    """
    from lbproxy.app.notify import sd_notify

    line = startup_line(config, role)
    log.info("{line}", line=line)
    sd_notify("READY=1\nSTATUS=" + line, environ)
