# -*- test-case-name: tests.test_bench -*-
"""
The options of a benchmark run, as L{bench.cli} fills them in.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import List, Optional, Set

__all__ = ["BENCH_DIR", "REPO_ROOT", "Settings"]

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(BENCH_DIR)


@dataclass
class Settings:
    """
    A run's options (see C{bash bench/run --help}).

    @ivar duration: Seconds per measurement.
    @ivar rounds: Rounds over every subject and scenario.
    @ivar warmup: Seconds of warm-up per subject and scenario, 0 for none.
    @ivar connections: wrk connections for small responses.
    @ivar large_connections: wrk connections for the 1 MiB file.
    @ivar tls: Whether to measure over TLS too.
    @ivar access_log_run: Whether to add lbproxy with its access log on.
    @ivar pythons: More interpreters for lbproxy and the stock proxy.
    @ivar workers: Worker counts for extra lbproxy subjects.
    @ivar only: Subject names to run (the backend always runs), or all.
    @ivar pin: Whether to pin processes to CPUs.
    @ivar proxy_cpus: CPUs of the servers under test.
    @ivar load_cpus: CPUs of wrk and the backend.
    @ivar results: Where a run's directory is made.
    @ivar python: The main interpreter (this one).
    @ivar lbproxy_root: The source tree lbproxy runs from (this
        repository, or e.g. an export of another commit).
    @ivar baseline_root: Another source tree (e.g. an export of the
        previous main) whose lbproxy runs beside this one under every
        interpreter, or L{None}.
    @ivar baseline_label: The baseline's name: its subjects are
        C{lbproxy@LABEL} and C{lbproxy@LABEL@TAG}.
    @ivar command: The command line, as recorded in the report.
    """

    duration: int = 10
    rounds: int = 2
    warmup: int = 2
    connections: int = 50
    large_connections: int = 10
    tls: bool = True
    access_log_run: bool = True
    pythons: List[str] = field(default_factory=list)
    workers: List[int] = field(default_factory=list)
    only: Optional[List[str]] = None
    pin: bool = True
    proxy_cpus: Set[int] = field(default_factory=lambda: {0})
    load_cpus: Set[int] = field(default_factory=lambda: {1})
    results: str = os.path.join(BENCH_DIR, "results")
    keep_temp: bool = False
    quick: bool = False
    python: str = sys.executable
    lbproxy_root: str = REPO_ROOT
    baseline_root: Optional[str] = None
    baseline_label: str = "base"
    nginx: str = "nginx"
    haproxy: str = "haproxy"
    wrk: str = "wrk"
    command: str = ""
