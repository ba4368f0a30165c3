# -*- test-case-name: tests.test_bench -*-
"""
Reload, drain and admin API figures, on their own (not part of C{bench/run}):

  1. wrk for C{--seconds} with C{--connections}, twice: once without
     reloads (the baseline) and once with the file reloaded (SIGHUP)
     C{--reloads} times, routes changing each time; the requests per
     second of both, the errors of both (must be 0), and each reload's
     time as lbproxy logs it (reading, validating, building and swapping);
  2. how long an admin API change takes to reach traffic: a keep-alive
     client sends requests back to back, a target is added through the
     API, and the time from sending the API call to the first response
     from the new target is taken, C{--api-rounds} times.

Run on a quiet machine::

    .venv/bin/python -m bench.reload_bench --seconds 20 --connections 50 --reloads 10

It prints one line per figure and a JSON summary last.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from bench.harness import Processes, free_ports, port_is_open
from bench.wrk import parse_wrk

TOKEN = "bench-admin-token-0123456789"
APPLIED = re.compile(r"reload \(([^)]*)\) applied in ([0-9.]+) ms")
ROTATE = """
local paths = {"/a", "/b", "/"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % 3) + 1])
end
"""


def config(i: int, port: int, admin: int, one: int, two: int, workers: int) -> str:
    """
    The file at reload C{i}: /a and /b swap pools, a route of its own
    comes and goes, the default pool changes.
    """
    first, second = ("one", "two") if i % 2 == 0 else ("two", "one")
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
access_log = false
default_pool = "{second}"
workers = {workers}

[admin]
listen = "tcp:{admin}:interface=127.0.0.1"
token = "{TOKEN}"

[pools.one]
targets = ["127.0.0.1:{one}"]

[pools.two]
targets = ["127.0.0.1:{two}"]

[[routes]]
path = "/a"
pool = "{first}"

[[routes]]
path = "/b"
pool = "{second}"

[[routes]]
path = "/v{i}"
pool = "{first}"
"""


def wait_open(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_is_open(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"nothing listening on {port}")
        time.sleep(0.05)


def run_wrk(port: int, seconds: int, connections: int, script: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout=10s", "-s", script,
         f"http://127.0.0.1:{port}/"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )


def api_latency(port: int, admin: int, address: str, rounds: int) -> List[float]:
    """
    Seconds from sending C{POST .../targets} to the first response from the
    new target, for C{rounds} add-then-delete rounds.
    """
    results = []
    for _ in range(rounds):
        client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        api = http.client.HTTPConnection("127.0.0.1", admin, timeout=10)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        started = time.perf_counter()
        api.request("POST", "/api/pools/one/targets", json.dumps({"address": address}), headers)
        api.getresponse().read()
        while True:
            client.request("GET", "/a")
            response = client.getresponse()
            response.read()
            if response.getheader("X-Demo-Backend") == "two":
                break
        results.append(time.perf_counter() - started)
        api.request("DELETE", f"/api/pools/one/targets/{address}", headers=headers)
        api.getresponse().read()
        client.close()
        api.close()
    return results


def main(argv: List[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--reloads", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--api-rounds", type=int, default=20)
    options = parser.parse_args(argv)

    directory = tempfile.mkdtemp(prefix="lbproxy-reload-bench-")
    processes = Processes(directory)
    try:
        one, two, port, admin = free_ports(4)
        for name, backend in (("one", one), ("two", two)):
            processes.start(f"demo-{name}", [sys.executable, "-m", "lbproxy.demo", "--listen",
                                             f"tcp:{backend}:interface=127.0.0.1", "--name", name])
            wait_open(backend)
        path = os.path.join(directory, "lbproxy.toml")
        with open(path, "w") as f:
            f.write(config(0, port, admin, one, two, options.workers))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        proxy = processes.start("lbproxy", [sys.executable, twistd, "-n", "--pidfile=",
                                            "lbproxy", "--config", path])
        wait_open(port)
        wait_open(admin)
        time.sleep(1 if options.workers == 1 else 3)
        script = os.path.join(directory, "rotate.lua")
        with open(script, "w") as f:
            f.write(ROTATE)

        summary: Dict[str, object] = {}
        for label, reloads in (("baseline", 0), ("reloading", options.reloads)):
            load = run_wrk(port, options.seconds, options.connections, script)
            for i in range(1, reloads + 1):
                time.sleep(options.seconds / (reloads + 1))
                with open(path, "w") as f:
                    f.write(config(i, port, admin, one, two, options.workers))
                os.kill(proxy.pid, signal.SIGHUP)
            out = load.communicate(timeout=options.seconds + 60)[0].decode("utf-8", "replace")
            report = parse_wrk(out)
            summary[label] = {
                "requests": report.requests, "requests_per_sec": report.requests_per_sec,
                "socket_errors": report.socket_errors, "non_2xx": report.non_2xx,
            }
            print(f"{label}: {report.requests} requests, {report.requests_per_sec:.0f}/s, "
                  f"{report.socket_errors} socket errors, {report.non_2xx} non-2xx")
        with open(proxy.log, "rb") as f:
            times = [float(m.group(2)) for m in APPLIED.finditer(f.read().decode("utf-8", "replace"))]
        if times:
            summary["reload_ms"] = {"count": len(times), "median": statistics.median(times),
                                    "max": max(times)}
            print(f"reload time: median {statistics.median(times):.2f} ms, "
                  f"max {max(times):.2f} ms over {len(times)}")
        latencies = api_latency(port, admin, f"127.0.0.1:{two}", options.api_rounds)
        summary["api_to_traffic_ms"] = {
            "median": statistics.median(latencies) * 1000, "max": max(latencies) * 1000,
        }
        print(f"API change to traffic: median {statistics.median(latencies) * 1000:.2f} ms, "
              f"max {max(latencies) * 1000:.2f} ms over {len(latencies)}")
        print(json.dumps(summary, sort_keys=True))
        failed = any(summary[k]["socket_errors"] or summary[k]["non_2xx"]
                     for k in ("baseline", "reloading"))
        return 1 if failed else 0
    finally:
        processes.stop_all()


if __name__ == "__main__":
    raise SystemExit(main())
