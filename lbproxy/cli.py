# -*- test-case-name: tests.test_cli -*-
"""
The C{lbproxy} command, an operator's front door to C{twistd lbproxy}::

    lbproxy run [--config FILE] [--logfile FILE]   run in the foreground
    lbproxy check [FILE]                           validate, exit 0 or 2
    lbproxy version                                lbproxy, Twisted, Python
    lbproxy passwd [--iterations N]                hash a basic-auth password

C{lbproxy run} is C{twistd -n --pidfile= lbproxy --config FILE}: in the
foreground (systemd, Docker and a terminal all want that), no pid file,
logging to standard output.  C{twistd lbproxy ...} keeps working for
everything else (daemon mode, C{--uid}, C{--logfile}).
"""

from __future__ import annotations

import os
import platform
import sys
from typing import IO, List, Optional, Sequence

__all__ = ["main", "run_argv"]

USAGE = """\
usage: lbproxy COMMAND [ARGS]

commands:
  run [--config FILE] [--logfile FILE]  run lbproxy in the foreground
                                        (twistd -n --pidfile= lbproxy)
  check [FILE]                          check a configuration as start-up
                                        would (default config.toml)
  version                               print the versions
  passwd [--iterations N]               hash a password for basic_auth
"""

#: Runs twistd in this interpreter whatever the script directory holds.
_TWISTD = "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()"


def run_argv(args: Sequence[str], executable: str) -> List[str]:
    """
    The twistd command line of C{lbproxy run ARGS}.

    @raise ValueError: for an argument C{run} does not take.
    """
    config = "config.toml"
    logfile = None
    args = list(args)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--config", "-c", "--logfile"):
            if not eq:
                if not args:
                    raise ValueError("%s needs a value" % (name,))
                value = args.pop(0)
            if name == "--logfile":
                logfile = value
            else:
                config = value
        else:
            raise ValueError("unknown argument %r" % (arg,))
    argv = [executable, "-c", _TWISTD, "--nodaemon", "--pidfile="]
    if logfile is not None:
        argv.append("--logfile=" + logfile)
    return argv + ["lbproxy", "--config", config]


def version_text() -> str:
    import twisted

    from lbproxy import __version__

    return "lbproxy %s (Twisted %s, %s %s)\n" % (
        __version__, twisted.__version__, platform.python_implementation(),
        platform.python_version(),
    )


def check(args: Sequence[str], stdout: IO[str], stderr: IO[str]) -> int:
    """
    C{lbproxy check [FILE]}: what C{twistd lbproxy --check} finds (the
    configuration, its certificates, an access log it cannot open).
    """
    from lbproxy.app.tap import Options

    if len(args) > 1:
        stderr.write(USAGE)
        return 2
    options = Options(stdout=stdout, stderr=stderr)
    try:
        options.parseOptions(["--check", "--config", args[0] if args else "config.toml"])
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    return 0


def main(
    argv: Optional[Sequence[str]] = None,
    stdout: Optional[IO[str]] = None,
    stderr: Optional[IO[str]] = None,
    execv=os.execv,
) -> int:
    """
    The C{lbproxy} console script.

    @param execv: replaces this process with twistd (C{lbproxy run}).
    @return: the exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    if not args or args[0] in ("-h", "--help", "help"):
        (stdout if args else stderr).write(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "version" and not rest:
        stdout.write(version_text())
        return 0
    if command == "check":
        return check(rest, stdout, stderr)
    if command == "passwd":
        from lbproxy.policy.passwd import main as passwd

        return passwd(rest, stdout=stdout, stderr=stderr)
    if command == "run":
        try:
            argv = run_argv(rest, sys.executable)
        except ValueError as e:
            stderr.write("lbproxy run: %s\n%s" % (e, USAGE))
            return 2
        stdout.flush()
        stderr.flush()
        execv(argv[0], argv)
        return 0  # (only when execv is a test's fake)
    stderr.write("lbproxy: unknown command %r\n%s" % (command, USAGE))
    return 2


def console() -> None:  # pragma: no cover
    sys.exit(main())
