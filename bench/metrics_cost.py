# -*- test-case-name: tests.test_bench -*-
"""
What metrics cost: lbproxy's requests per second with and without a
Prometheus scraper polling C{/metrics} on the admin listener, in
alternating rounds on one running proxy (the goal: at most 3 % fewer).

    .venv/bin/python -m bench.metrics_cost               # 5 rounds x 10 s
    .venv/bin/python -m bench.metrics_cost --rounds 7 --duration 15 \\
        --scrape-interval 1 --routes 50 --targets 10

The backend is nginx answering C{/small} from memory (as in C{bench/run}),
on the load CPUs with wrk; lbproxy alone on the first CPU.  C{--routes}
and C{--targets} make the configuration (and so the scrape) bigger: every
route and target has its own series.  Needs nginx and wrk (C{bench/run}
installs them).  Prints one line per measurement and a summary with the
medians and the difference, and the median time one scrape took.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import List, Optional, Set

from bench.harness import Processes, free_ports, pinning, wait_for_port
from bench.servers import nginx_backend_config
from bench.subjects import _nginx_user, child_env, twistd, write
from bench.wrk import parse_wrk, wrk_command

__all__ = ["config", "main"]


def config(port: int, admin: int, backend: int, routes: int = 1, targets: int = 1) -> str:
    """
    lbproxy with the admin listener, every request (C{/}) to the one
    backend; C{routes - 1} more routes and C{targets - 1} more targets (in
    a pool of their own, never asked: addresses nothing listens on, not
    probed) only make the scrape as big as a real configuration's.
    """
    lines = [
        "[server]",
        f'listen = "tcp:{port}:interface=127.0.0.1"',
        "access_log = false",
        "",
        "[admin]",
        f'listen = "tcp:{admin}:interface=127.0.0.1"',
        'token = "bench-admin-token-0123456789"',
        "",
        "[pools.backend]",
        f'targets = ["127.0.0.1:{backend}"]',
        "",
    ]
    if targets > 1 or routes > 1:
        lines += [
            "[pools.extra]",
            "targets = [%s]" % ", ".join(
                '"127.0.0.1:%d"' % (20000 + n,) for n in range(max(1, targets - 1))
            ),
            "",
        ]
    for n in range(routes - 1):
        lines += ["[[routes]]", f'path = "/r{n}"', 'pool = "extra"', ""]
    lines += ["[[routes]]", 'path = "/"', 'pool = "backend"', ""]
    return "\n".join(lines)


class Scraper(threading.Thread):
    """
    GET /metrics every C{interval} seconds until stopped; keeps the times.
    """

    def __init__(self, url: str, interval: float) -> None:
        threading.Thread.__init__(self, daemon=True)
        self.url = url
        self.interval = interval
        self.times: List[float] = []
        self.size = 0
        self.errors = 0
        self._done = threading.Event()
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def run(self) -> None:
        while not self._done.is_set():
            began = time.monotonic()
            try:
                with self._opener.open(self.url, timeout=5) as response:
                    self.size = len(response.read())
                self.times.append(time.monotonic() - began)
            except OSError:
                self.errors += 1
            self._done.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> None:
        self._done.set()
        self.join(10)


def _cpus() -> tuple:
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        return None, None
    proxy: Set[int] = {cpus[0]}
    return proxy, set(cpus[1:])


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.metrics_cost", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--scrape-interval", type=float, default=1.0)
    p.add_argument("--routes", type=int, default=1)
    p.add_argument("--targets", type=int, default=1)
    p.add_argument("--python", default=sys.executable, help="the interpreter running lbproxy")
    args = p.parse_args(argv)
    for program in ("nginx", "wrk"):
        if shutil.which(program) is None and not os.path.exists("/usr/sbin/" + program):
            print(f"bench.metrics_cost: {program} is not installed (bash bench/run installs it)")
            return 2
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    proxyCpus, loadCpus = _cpus()
    temp = tempfile.mkdtemp(prefix="lbproxy-metrics-cost-")
    processes = Processes(temp)
    try:
        backend, port, admin = free_ports(3)
        www = os.path.join(temp, "www")
        os.makedirs(www)
        for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(temp, "backend-temp", part), exist_ok=True)
        conf = write(temp, "backend.conf",
                     nginx_backend_config(temp, backend, www, user=_nginx_user()))
        started = processes.start(
            "backend",
            [nginx, "-p", temp, "-e", os.path.join(temp, "backend-error.log"), "-c", conf,
             "-g", "daemon off;"],
            loadCpus,
        )
        wait_for_port(started, backend, 20)
        path = write(temp, "lbproxy.toml", config(port, admin, backend, args.routes, args.targets))
        started = processes.start(
            "lbproxy", twistd(args.python) + ["-n", "--pidfile=", "lbproxy", "--config", path],
            proxyCpus, env=child_env(),
        )
        wait_for_port(started, port, 30)
        wait_for_port(started, admin, 30)
        url = f"http://127.0.0.1:{port}/small"
        metrics = f"http://127.0.0.1:{admin}/metrics"

        def measure(duration: int) -> float:
            command = wrk_command(url, duration, args.connections)
            done = subprocess.run(command, capture_output=True, text=True,
                                  preexec_fn=pinning(loadCpus), timeout=duration + 30)
            return parse_wrk(done.stdout).requests_per_sec

        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
            url, timeout=5
        ) as response:
            if response.status != 200:
                print(f"bench.metrics_cost: {url} answered {response.status}")
                return 1
        if args.warmup:
            measure(args.warmup)
        without: List[float] = []
        with_: List[float] = []
        scrapes: List[float] = []
        size = 0
        for round_ in range(args.rounds):
            # Alternate which goes first, so drift hits both alike.
            order = ("without", "with") if round_ % 2 == 0 else ("with", "without")
            for kind in order:
                if kind == "with":
                    scraper = Scraper(metrics, args.scrape_interval)
                    scraper.start()
                    rps = measure(args.duration)
                    scraper.stop()
                    scrapes += scraper.times
                    size = scraper.size or size
                    with_.append(rps)
                    print(f"round {round_ + 1}: with a scraper every {args.scrape_interval:g}s: "
                          f"{rps:,.0f} req/s ({len(scraper.times)} scrapes, "
                          f"{scraper.errors} failed)")
                else:
                    rps = measure(args.duration)
                    without.append(rps)
                    print(f"round {round_ + 1}: without a scraper: {rps:,.0f} req/s")
        a, b = statistics.median(without), statistics.median(with_)
        print()
        print(f"routes {args.routes}, targets {args.targets}, {args.connections} connections, "
              f"{args.rounds} x {args.duration}s")
        print(f"median without a scraper: {a:,.0f} req/s")
        print(f"median with a scraper:    {b:,.0f} req/s")
        print(f"cost: {(a - b) / a * 100:+.2f} % (goal: at most 3 %)")
        if scrapes:
            print(f"one scrape: median {statistics.median(scrapes) * 1000:.1f} ms, "
                  f"{size:,} bytes")
        return 0
    finally:
        processes.stop_all()
        shutil.rmtree(temp, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
