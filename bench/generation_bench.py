# -*- test-case-name: tests.test_bench -*-
"""
Listener changes with C{workers > 1} (a new generation of workers), on its
own (not part of C{bench/run}): lbproxy listens on a kept port and on a
port that moves at each reload; wrk loads the kept port for C{--seconds}
with C{--connections}, twice, once with keep-alive and once with a new
connection a request (C{Connection: close}), while the moving listener is
moved C{--reloads} times (SIGHUP).  It prints the requests, requests per
second and errors of each run and each reload's time as lbproxy logs it
(from reading the file to the new generation ready and the old retired).

Run on a quiet machine::

    .venv/bin/python -m bench.generation_bench --workers 2 --seconds 20 --connections 50 --reloads 5

It prints one line per figure and a JSON summary last; exits 1 if the
Connection: close run saw any error (keep-alive errors are the HTTP/1.1
idle-close race, reported but not failed on).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from bench.harness import Processes, free_ports
from bench.reload_bench import APPLIED, wait_open
from bench.wrk import parse_wrk


def config(kept: int, moving: int, backend: int, workers: int) -> str:
    return f"""
[server]
listen = ["tcp:{kept}:interface=127.0.0.1", "tcp:{moving}:interface=127.0.0.1"]
access_log = false
workers = {workers}

[pools.web]
targets = ["127.0.0.1:{backend}"]

[[routes]]
path = "/"
pool = "web"
"""


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="lbproxy-generation-bench-")
    processes = Processes(directory)
    try:
        ports = free_ports(3 + 2 * options.reloads)
        backend, kept, moving = ports[0], ports[1], ports[2:]
        processes.start("demo", [sys.executable, "-m", "lbproxy.demo", "--listen",
                                 f"tcp:{backend}:interface=127.0.0.1", "--name", "web"])
        wait_open(backend)
        path = os.path.join(directory, "lbproxy.toml")
        with open(path, "w") as f:
            f.write(config(kept, moving[0], backend, options.workers))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        proxy = processes.start("lbproxy", [sys.executable, twistd, "-n", "--pidfile=",
                                            "lbproxy", "--config", path])
        wait_open(kept)
        time.sleep(3)
        summary: Dict[str, object] = {}
        step = 0
        for label, extra in (("keep-alive", []), ("connection-close", ["-H", "Connection: close"])):
            load = subprocess.Popen(
                ["wrk", "-t2", f"-c{options.connections}", f"-d{options.seconds}s",
                 "--timeout=10s", *extra, f"http://127.0.0.1:{kept}/"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
            for _ in range(options.reloads):
                time.sleep(options.seconds / (options.reloads + 1))
                step += 1
                with open(path, "w") as f:
                    f.write(config(kept, moving[step], backend, options.workers))
                os.kill(proxy.pid, signal.SIGHUP)
            out = load.communicate(timeout=options.seconds + 60)[0].decode("utf-8", "replace")
            report = parse_wrk(out)
            summary[label] = {
                "requests": report.requests, "requests_per_sec": report.requests_per_sec,
                "socket_errors": report.socket_errors, "non_2xx": report.non_2xx,
            }
            print(f"{label}: {report.requests} requests, {report.requests_per_sec:.0f}/s, "
                  f"{report.socket_errors} socket errors, {report.non_2xx} non-2xx")
        # Reloads run one after the other: wait for the last to be done.
        deadline = time.monotonic() + 60
        while True:
            with open(proxy.log, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            times = [float(m.group(2)) for m in APPLIED.finditer(text)]
            rejected = text.count(") rejected")
            if len(times) + rejected >= step or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        summary["rejected"] = rejected
        if times:
            summary["reload_ms"] = {"count": len(times), "median": statistics.median(times),
                                    "max": max(times)}
            print(f"reload (new generation) time: median {statistics.median(times):.1f} ms, "
                  f"max {max(times):.1f} ms over {len(times)} (of {step}; {rejected} rejected)")
        print(json.dumps(summary, sort_keys=True))
        close = summary["connection-close"]
        return 1 if close["socket_errors"] or close["non_2xx"] or len(times) != step else 0
    finally:
        processes.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
