# -*- test-case-name: tests.test_tap -*-
"""
The C{twistd lbproxy} command: options in, a service out.
"""

from __future__ import annotations

import sys

from twisted.python import usage

from lbproxy.config import ConfigError, load_config


class Options(usage.Options):
    """
    C{twistd lbproxy [--config PATH] [--check]}.

    The configuration is loaded and validated while parsing, before anything
    binds: a bad file stops start-up with one line naming file, key and
    reason, and a non-zero exit.
    """

    synopsis = "[--config PATH] [--check]"
    optParameters = [
        ["config", "c", "config.toml", "Path of the TOML configuration file."],
        # Set by the main process for its workers (workers > 1), not by hand.
        ["listen-fds", None, None, "(internal) inherited listening descriptors."],
        ["worker-index", None, None, "(internal) this worker's number."],
        ["parent-pid", None, None, "(internal) the main process, to end with."],
        ["config-fd", None, None, "(internal) read the configuration's text here."],
    ]
    optFlags = [
        ["check", None, "Validate the configuration and exit."],
    ]

    def __init__(self, stdout=None, stderr=None) -> None:
        usage.Options.__init__(self)
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr

    def postOptions(self) -> None:
        try:
            if self["config-fd"] is not None:
                # A worker: the text its main process validated and serves.
                self["loaded"] = _configFromFD(int(self["config-fd"]), self["config"])
            else:
                self["loaded"] = load_config(self["config"])
            # Certificates, keys and CA files too, so that a bad one stops
            # start-up here; --check writes nothing (no demo certificate).
            self["tls"] = self._loadTLS(self["loaded"])
        except ConfigError as e:
            self._stderr.write("lbproxy: configuration error: %s\n" % (e,))
            raise SystemExit(2)
        # What start-up would trip over next (an access log it cannot open).
        from lbproxy.app.startup import config_problems

        for problem in config_problems(self["loaded"]):
            self._stderr.write("lbproxy: configuration error: %s: %s\n" % (self["config"], problem))
            raise SystemExit(2)
        if self["check"]:
            config = self["loaded"]
            https = len(config.tls.listen) if config.tls is not None else 0
            self._stdout.write(
                "%s: configuration OK (%d pools, %d routes, %d listeners%s)\n"
                % (config.path, len(config.pools), len(config.routes), len(config.server.listen),
                   ", %d HTTPS" % (https,) if https else "")
            )
            raise SystemExit(0)

    def _loadTLS(self, config):
        """
        Read the certificates, keys and CA files the configuration names.
        """
        import datetime

        from lbproxy.tls.material import load_tls_material

        material = load_tls_material(
            config, datetime.datetime.now(datetime.timezone.utc), generate=not self["check"]
        )
        for warning in material.warnings:
            self._stderr.write("lbproxy: warning: %s\n" % (warning,))
        for path in material.generated:
            self._stderr.write("lbproxy: generated a self-signed certificate: %s\n" % (path,))
        return material


def _configFromFD(fd: int, path: str):
    """
    The configuration whose text arrives on C{fd} (until its end), with
    relative names resolved against C{path}'s directory.
    """
    import os

    from lbproxy.app.reload import parse_text

    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return parse_text(b"".join(chunks).decode("utf-8"), path)


def _restartForPyPy() -> None:
    """
    Under PyPy, start again with a larger GC nursery unless the environment
    sets one (see L{lbproxy.app.gctuning}). Nothing is bound or written yet.
    """
    import os
    import platform

    from lbproxy.app.gctuning import pypy_restart

    command = pypy_restart(
        sys.argv, sys.executable, os.environ, platform.python_implementation() == "PyPy"
    )
    if command is not None:
        executable, args, env = command
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(executable, args, env)


def makeService(options: Options):
    _restartForPyPy()
    from twisted.internet import reactor

    from lbproxy.app.service import ProxyService

    _endWithParent(options)
    listenFDs = None
    if options["worker-index"] is not None:
        # A worker never supervises workers of its own, whatever the file
        # says.
        listenFDs = [int(fd) for fd in (options["listen-fds"] or "").split(",") if fd]
    _raiseFileLimit()
    import os

    from lbproxy.app.startup import StartupReport, tag_events

    # twistd's own options: without -n it daemonizes (after this returns).
    twistd = getattr(options, "parent", None)
    daemon = twistd is not None and not twistd.get("nodaemon", True)
    if options["worker-index"] is not None:
        tag_events("worker %s" % (options["worker-index"],))
    elif options["loaded"].server.workers > 1:
        tag_events("main")
    return ProxyService(
        options["loaded"], reactor, tls=options.get("tls"), listenFDs=listenFDs,
        daemon=daemon, report=StartupReport(twistd, daemon=daemon), environ=os.environ,
    )


def _endWithParent(options: Options, watch=None) -> None:
    """
    In a worker: end when the main process does (see L{lbproxy.app.parent});
    exit now if it is gone already.

    @param watch: L{lbproxy.app.parent.watch_parent}.
    """
    if options["parent-pid"] is None:
        return
    if watch is None:
        from lbproxy.app.parent import watch_parent as watch
    if not watch(int(options["parent-pid"])):
        sys.stderr.write("lbproxy: worker: the main process is gone; exiting\n")
        raise SystemExit(1)


def _raiseFileLimit() -> None:
    """
    Let the process hold as many connections as the system allows: raise
    the soft limit of open files to the hard limit (the default soft limit
    of 1024 would cap client and backend connections together).
    """
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != resource.RLIM_INFINITY and soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
