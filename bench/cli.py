# -*- test-case-name: tests.test_bench -*-
"""
The command line of a benchmark run (C{python -m bench}).

C{bash bench/run} installs what is needed and then runs this; see
C{docs/performance.md}.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
from typing import Callable, List, Optional, Sequence, Set

from bench.harness import parse_cpus
from bench.runner import run
from bench.settings import Settings

#: --quick: about two minutes with the default subjects.
QUICK = {"duration": 2, "rounds": 2, "warmup": 1}
FULL = {"duration": 10, "rounds": 2, "warmup": 2}


def _find(program: str) -> str:
    found = shutil.which(program)
    if found:
        return found
    for directory in ("/usr/sbin", "/sbin", "/usr/local/sbin"):
        path = os.path.join(directory, program)
        if os.access(path, os.X_OK):
            return path
    return program


def _cpus(text: str) -> Set[int]:
    try:
        return parse_cpus(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: What a baseline's label may be: it becomes part of subject names, which
#: C{--only} separates with commas and the interpreter tag follows after
#: an C{@}.
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*\Z")


def git_describe(root: str) -> Optional[str]:
    """
    C{git describe --tags --always --dirty} of C{root} when it is the top
    of a git checkout (or worktree), else L{None}.
    """
    if not os.path.exists(os.path.join(root, ".git")):
        return None
    try:
        done = subprocess.run(
            ["git", "-C", root, "describe", "--tags", "--always", "--dirty"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, GIT_OPTIONAL_LOCKS="0"),
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = done.stdout.decode("utf-8", "replace").strip()
    return text if done.returncode == 0 and text else None


def default_baseline_label(
    root: str, describe: Callable[[str], Optional[str]] = git_describe
) -> str:
    """
    The baseline's label when C{--baseline-label} is not given: the tree's
    C{git describe} if it is a checkout, else its directory's name without
    a leading C{lbproxy-} (C{/tmp/lbproxy-base} is C{base}); characters a
    label cannot have become C{-}.
    """
    text = describe(root)
    if not text:
        text = os.path.basename(os.path.normpath(root))
        if text.startswith("lbproxy-") and len(text) > len("lbproxy-"):
            text = text[len("lbproxy-") :]
    text = re.sub(r"[^A-Za-z0-9._+-]", "-", text).lstrip("._+-")
    return text or "base"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/run",
        description="Benchmark lbproxy against nginx, HAProxy and Twisted's "
        "ReverseProxyResource on 127.0.0.1, in one interleaved run.",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="about 2 minutes: --duration %(duration)d --rounds %(rounds)d "
        "--warmup %(warmup)d" % QUICK,
    )
    p.add_argument(
        "--duration",
        type=_positive,
        help="seconds per measurement (whole seconds; default %d)" % FULL["duration"],
    )
    p.add_argument(
        "--rounds",
        type=_positive,
        help="rounds; the table shows the median (default %d)" % FULL["rounds"],
    )
    p.add_argument(
        "--warmup",
        type=int,
        help="seconds of warm-up per subject and scenario before the rounds, 0 for "
        "none (default %d)" % FULL["warmup"],
    )
    p.add_argument(
        "--connections",
        type=_positive,
        default=50,
        help="wrk connections for small responses (default 50)",
    )
    p.add_argument(
        "--large-connections",
        type=_positive,
        default=10,
        help="wrk connections for the 1 MiB file (default 10)",
    )
    p.add_argument("--no-tls", dest="tls", action="store_false", help="HTTP only")
    p.add_argument(
        "--no-access-log-run",
        dest="access_log_run",
        action="store_false",
        help="leave out the lbproxy run with the access log on",
    )
    p.add_argument(
        "--python",
        dest="pythons",
        action="append",
        default=[],
        metavar="PATH",
        help="also run lbproxy and the stock Twisted proxy under this interpreter, an "
        "absolute path or a command on PATH (e.g. a PyPy with Twisted and lbproxy's "
        "dependencies); repeatable",
    )
    p.add_argument(
        "--workers",
        action="append",
        type=_positive,
        default=[],
        metavar="N",
        help="also run lbproxy with server.workers = N (skipped if the "
        "configuration does not accept it); repeatable",
    )
    p.add_argument(
        "--only",
        metavar="NAMES",
        help="comma-separated subjects to run besides the backend: nginx, haproxy, "
        "twisted, lbproxy, lbproxy-log, twisted@TAG, lbproxy@TAG, lbproxy-wN, and with "
        "--baseline-root lbproxy@LABEL, lbproxy@LABEL@TAG",
    )
    p.add_argument(
        "--no-pin", dest="pin", action="store_false", help="do not pin processes to CPUs"
    )
    p.add_argument(
        "--proxy-cpus",
        type=_cpus,
        metavar="LIST",
        help="CPUs of the servers under test (default: the first CPU)",
    )
    p.add_argument(
        "--load-cpus",
        type=_cpus,
        metavar="LIST",
        help="CPUs of wrk and the backend (default: the other CPUs)",
    )
    p.add_argument(
        "--lbproxy-root",
        metavar="DIR",
        help="run lbproxy from this source tree (e.g. a 'git archive' export of another "
        "commit) instead of this repository",
    )
    p.add_argument(
        "--baseline-root",
        metavar="DIR",
        help="also run lbproxy from this source tree (e.g. a 'git archive' export of the "
        "previous main) as the subject lbproxy@LABEL, under every interpreter, and compare "
        "it with lbproxy round by round",
    )
    p.add_argument(
        "--baseline-label",
        metavar="LABEL",
        help="the baseline's name in subject names (default: the tree's 'git describe', "
        "else its directory's name without 'lbproxy-': /tmp/lbproxy-base is 'base')",
    )
    p.add_argument(
        "--results", metavar="DIR", help="where the run's directory is made (default bench/results)"
    )
    p.add_argument(
        "--keep-temp",
        action="store_true",
        help="keep the temporary directory (configurations, logs)",
    )
    p.add_argument("--nginx", default=None, metavar="PATH")
    p.add_argument("--haproxy", default=None, metavar="PATH")
    p.add_argument("--wrk", default=None, metavar="PATH")
    return p


def settings_from(argv: Sequence[str], cpus: Optional[Set[int]] = None) -> Settings:
    """
    The L{Settings} for a command line.

    @param cpus: The CPUs this process may use (default: its affinity).
    """
    p = parser()
    args = p.parse_args(list(argv))
    defaults = QUICK if args.quick else FULL
    settings = Settings()
    settings.quick = args.quick
    settings.duration = args.duration or defaults["duration"]
    settings.rounds = args.rounds or defaults["rounds"]
    settings.warmup = defaults["warmup"] if args.warmup is None else max(0, args.warmup)
    settings.connections = args.connections
    settings.large_connections = args.large_connections
    settings.tls = args.tls
    settings.access_log_run = args.access_log_run
    settings.pythons = list(args.pythons)
    settings.workers = list(args.workers)
    settings.only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    available = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
    settings.proxy_cpus = args.proxy_cpus or {available[0]}
    settings.load_cpus = args.load_cpus or (set(available[1:]) or {available[0]})
    settings.pin = args.pin and len(available) > 1
    settings.keep_temp = args.keep_temp
    if args.lbproxy_root:
        settings.lbproxy_root = os.path.abspath(args.lbproxy_root)
    if args.baseline_label is not None and not args.baseline_root:
        p.error("--baseline-label needs --baseline-root")
    if args.baseline_root:
        root = os.path.abspath(args.baseline_root)
        if not os.path.isfile(os.path.join(root, "lbproxy", "__init__.py")):
            p.error(f"--baseline-root {args.baseline_root}: no lbproxy/__init__.py there")
        label = args.baseline_label
        if label is None:
            label = default_baseline_label(root)
        elif not LABEL.match(label):
            p.error(
                f"--baseline-label {label!r}: letters, digits and . _ + - only, "
                "starting with a letter or digit"
            )
        settings.baseline_root = root
        settings.baseline_label = label
    if args.results:
        settings.results = os.path.abspath(args.results)
    settings.nginx = args.nginx or _find("nginx")
    settings.haproxy = args.haproxy or _find("haproxy")
    settings.wrk = args.wrk or _find("wrk")
    settings.command = " ".join(["bash bench/run"] + [shlex.quote(a) for a in argv])
    return settings


def main(argv: Optional[List[str]] = None) -> int:
    settings = settings_from(sys.argv[1:] if argv is None else argv)
    return run(settings)
