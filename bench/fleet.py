# -*- test-case-name: tests.e2e.test_fleet_e2e -*-
"""
A fleet of lbproxy instances, measured (not part of C{bench/run}; the
end-to-end tests in C{tests/e2e/test_fleet_e2e.py} use its helpers):

  1. propagation: 3 proxies follow one etcd; a pool's targets are changed
     C{--writes} times; for each write, the time from the write until all
     3 route by it (each polled back to back over keep-alive); p50/p99;
  2. recovery: writes go on (one every 20 ms) while etcd is killed and
     restarted, and while one proxy is stopped (SIGSTOP) and etcd is
     compacted past its revision; then every proxy's pools must be
     exactly etcd's (lost updates: 0);
  3. feed: targets added and removed through a WebSocket agent reach
     traffic (time until the change is seen), and the agent going away
     and coming back (time to reconnect);
  4. shared limit: 3 proxies with C{rate = 50} shared through one Redis,
     flooded for C{--seconds}; requests let through per second in total;
     then Redis is stopped: every request is still answered (200 or 429,
     never 5xx).

Run on a quiet machine::

    .venv/bin/python -m bench.fleet --writes 100 --seconds 6

It prints one line per figure and a JSON summary last.  Needs C{etcd}
(Debian's etcd-server) and C{redis-server}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Dict, List, Sequence

from bench.fleetprocs import (
    PREFIX, ROOT, Etcd, Proxy, Redis, demos, proxy_config, routes_to, wait_port, wait_until,
)
from bench.harness import Processes, free_ports

__all__ = ["PREFIX", "Etcd", "Proxy", "Redis", "demos", "feed", "propagation", "proxy_config",
           "recovery", "routes_to", "shared_limit", "wait_until"]


# -- the measurements -------------------------------------------------------------------


def propagation(etcd: Etcd, proxies: List[Proxy], ports: Dict[str, int], writes: int,
                timeout: float = 5.0) -> List[float]:
    """
    Seconds from each write of pool C{web}'s targets until every proxy
    routes by it.
    """
    names = sorted(ports)
    times = []
    for i in range(writes):
        name = names[(i + 1) % len(names)]
        started = time.monotonic()
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{ports[name]}"]})
        pending = list(proxies)
        while pending:
            pending = [p for p in pending if not routes_to(p, name)]
            if time.monotonic() - started > timeout:
                raise AssertionError(f"write {i} not routed by every proxy in {timeout} s")
        times.append(time.monotonic() - started)
    return times


class Writer(threading.Thread):
    """
    Writes go on: pool C{wN} = one of the demo targets, every C{interval}
    seconds, retrying each until etcd takes it.
    """

    def __init__(self, etcd: Etcd, ports: Dict[str, int], interval: float = 0.02) -> None:
        threading.Thread.__init__(self, daemon=True)
        self.etcd = etcd
        self.targets = [f"127.0.0.1:{p}" for p in sorted(ports.values())]
        self.interval = interval
        self.stopping = threading.Event()
        self.written = 0
        self.retries = 0

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            key = f"{PREFIX}/pools/w{i % 25}"
            value = {"targets": [self.targets[i % len(self.targets)]]}
            while not self.stopping.is_set():
                try:
                    self.etcd.put(key, value)
                    break
                except OSError:
                    self.retries += 1
                    time.sleep(0.05)
            self.written += 1
            i += 1
            time.sleep(self.interval)


def recovery(etcd: Etcd, proxies: List[Proxy], ports: Dict[str, int],
             downtime: float = 1.5, settle: float = 15.0) -> dict:
    """
    etcd killed and restarted, and a compaction past a stopped proxy's
    revision, while writes go on; then each proxy's pools against etcd's.
    """
    writer = Writer(etcd, ports)
    writer.start()
    time.sleep(0.5)
    etcd.kill()
    time.sleep(downtime)
    etcd.start()
    time.sleep(0.5)
    # One proxy falls behind; its revision is compacted away meanwhile
    # (1 MiB values under the prefix fill its socket buffers, so that
    # etcd holds the events back for it).
    behind = proxies[-1]
    os.kill(behind.started.pid, signal.SIGSTOP)
    try:
        pad = "x" * (1 << 20)
        for i in range(12):
            etcd.put(f"{PREFIX}/padding/{i}", pad)
        time.sleep(0.5)
        revision = etcd.put(f"{PREFIX}/padding/last", "x")
        etcd.compact(revision)
    finally:
        os.kill(behind.started.pid, signal.SIGCONT)
    time.sleep(0.5)
    writer.stopping.set()
    writer.join(10)
    final = etcd.pools()
    lost = {}
    for proxy in proxies:
        try:
            wait_until(lambda: _subset(final, proxy.pools()), settle, 0.05)
        except AssertionError:
            pass
        seen = proxy.pools()
        lost[proxy.name] = sorted(name for name in final if seen.get(name) != final[name])
    return {
        "writes": writer.written,
        "write_retries_while_etcd_down": writer.retries,
        "lost_updates": {name: len(keys) for name, keys in lost.items()},
        "lost_keys": lost,
        "compaction_resyncs": {p.name: p.log().count("was compacted") for p in proxies},
        "reconnects": {p.name: p.log().count("reachable again") for p in proxies},
    }


def _subset(final, seen) -> bool:
    return all(seen.get(name) == targets for name, targets in final.items())


def feed(processes: Processes, directory: str, ports: Dict[str, int]) -> dict:
    """
    A proxy with a discovery feed: add and remove through the agent, then
    the agent stopped and started again.
    """
    listen, control = free_ports(2)
    a, b = sorted(ports)

    def agent(targets=None):
        argv = [sys.executable, "-m", "bench.feedagent", "--listen", str(listen),
                "--control", str(control)]
        if targets:
            argv += ["--targets", json.dumps(targets)]
        started = processes.start("agent", argv, cwd=ROOT)
        wait_port(listen)
        wait_port(control)
        return started

    def send(targets) -> None:
        request = urllib.request.Request(f"http://127.0.0.1:{control}/targets",
                                         data=json.dumps(targets).encode(), method="PUT")
        urllib.request.urlopen(request, timeout=5).read()

    started = agent([f"127.0.0.1:{ports[a]}"])
    proxy = Proxy(processes, directory, "feedproxy", lambda port, admin: proxy_config(
        port, admin, None, [ports[a]]).replace(
            '[pools.web]\n', f'[pools.web]\ndiscovery = {{ websocket = "ws://127.0.0.1:{listen}/" }}\n'))
    wait_until(lambda: proxy.pools()["web"] == [f"127.0.0.1:{ports[a]}"], 10, 0.05)
    seen = lambda names: set(proxy.get()[1] for _ in range(8)) == set(names)  # noqa: E731
    # Timed from just before the agent is told (its PUT included).
    t0 = time.monotonic()
    send([f"127.0.0.1:{ports[a]}", f"127.0.0.1:{ports[b]}"])
    wait_until(lambda: seen({a, b}), 5)
    added = time.monotonic() - t0
    t1 = time.monotonic()
    send([f"127.0.0.1:{ports[b]}"])
    wait_until(lambda: seen({b}), 5)
    removed = time.monotonic() - t1
    send("not a list")
    time.sleep(0.2)
    kept_after_malformed = seen({b})
    processes.stop(started)
    time.sleep(1.0)
    kept_while_away = seen({b})
    started = agent([f"127.0.0.1:{ports[a]}"])
    back = wait_until(lambda: seen({a}), 40, 0.01)
    log = proxy.log()
    processes.stop(started)
    return {
        "added_reaches_traffic_s": round(added, 4),
        "removed_leaves_traffic_s": round(removed, 4),
        "malformed_ignored": kept_after_malformed and "message ignored" in log,
        "targets_kept_while_agent_away": kept_while_away,
        "reconnected_after_agent_back_s": round(back, 3),
        "proxy": proxy,
    }


def flood(proxies: List[Proxy], seconds: float, threads: int = 6) -> List[Dict[int, int]]:
    """
    Requests back to back from C{threads} clients spread over the proxies;
    per whole second, the count of each status.
    """
    counts: List[Dict[int, int]] = [dict() for _ in range(int(seconds) + 1)]
    lock = threading.Lock()
    start = time.monotonic()

    def client(proxy: Proxy) -> None:
        connection = Proxy.__new__(Proxy)
        connection.port = proxy.port
        connection._connection = None
        while True:
            now = time.monotonic() - start
            if now >= seconds:
                return
            try:
                status, _ = connection.get()
            except OSError:
                status = 0
            with lock:
                bucket = counts[int(now)]
                bucket[status] = bucket.get(status, 0) + 1

    workers = [threading.Thread(target=client, args=(proxies[i % len(proxies)],))
               for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return counts[:int(seconds)]


def shared_limit(processes: Processes, directory: str, ports: Dict[str, int], rate: int,
                 seconds: float, count: int = 3) -> dict:
    redis = Redis(processes, directory)
    limit = f'[rate_limit]\nrate = {rate}\nburst = {rate}\nshared = "{redis.url}"\n'
    target = [sorted(ports.values())[0]]
    proxies = [Proxy(processes, directory, f"limited{i}", lambda port, admin: proxy_config(
        port, admin, None, target, limit)) for i in range(count)]
    counts = flood(proxies, seconds)
    # The first second spends the burst: measure after it.
    allowed = [c.get(200, 0) for c in counts[1:]]
    redis.stop()
    after = flood(proxies, 2.0)
    statuses = {}
    for c in after:
        for status, n in c.items():
            statuses[status] = statuses.get(status, 0) + n
    logs = [p.log() for p in proxies]
    return {
        "rate": rate, "instances": count,
        "allowed_per_second": allowed,
        "mean_allowed_per_second": round(statistics.mean(allowed), 1) if allowed else None,
        "refused_per_second": [c.get(429, 0) for c in counts[1:]],
        "after_redis_stopped": statuses,
        "fallback_logged": [log.count("fall back") for log in logs],
        "proxies": proxies,
    }


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet")
    parser.add_argument("--writes", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    directory = tempfile.mkdtemp(prefix="lbproxy-fleet-")
    processes = Processes(directory)
    summary: dict = {}
    try:
        ports = demos(processes, ["alpha", "beta"])
        etcd = Etcd(processes, directory)
        etcd.start()
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{ports['alpha']}"]})
        proxies = [Proxy(processes, directory, f"proxy{i}", lambda port, admin: proxy_config(
            port, admin, etcd.url, [ports["alpha"]])) for i in range(3)]
        times = propagation(etcd, proxies, ports, args.writes)
        summary["propagation_ms"] = {
            "writes": len(times), "p50": round(percentile(times, 50) * 1000, 2),
            "p99": round(percentile(times, 99) * 1000, 2),
            "max": round(max(times) * 1000, 2)}
        print(f"propagation to 3 proxies over {len(times)} writes: "
              f"p50 {summary['propagation_ms']['p50']} ms, "
              f"p99 {summary['propagation_ms']['p99']} ms", flush=True)
        summary["recovery"] = recovery(etcd, proxies, ports)
        print(f"recovery: {summary['recovery']}", flush=True)
        result = feed(processes, directory, ports)
        result.pop("proxy")
        summary["feed"] = result
        print(f"feed: {result}", flush=True)
        result = shared_limit(processes, directory, ports, args.rate, args.seconds)
        result.pop("proxies")
        summary["shared_limit"] = result
        print(f"shared limit: {result}", flush=True)
    finally:
        processes.stop_all()
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
        else:
            print(f"work directory: {directory}")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
