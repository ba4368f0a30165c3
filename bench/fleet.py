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
import base64
import http.client
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
from typing import Dict, List, Optional, Sequence

from bench.harness import Processes, free_ports, port_is_open

PREFIX = "/lbproxy"

#: Where C{python -m bench.feedagent} runs from.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_is_open(port):
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on {port} after {timeout} s")
        time.sleep(0.02)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class Etcd:
    """
    One etcd member on loopback, with its data in C{directory}.
    """

    def __init__(self, processes: Processes, directory: str) -> None:
        self.processes = processes
        self.directory = directory
        self.port, self.peer = free_ports(2)
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = None

    def start(self) -> None:
        peer = f"http://127.0.0.1:{self.peer}"
        self.started = self.processes.start("etcd", [
            shutil.which("etcd") or "/usr/bin/etcd", "--name", "e1",
            "--data-dir", os.path.join(self.directory, "etcd-data"),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"e1={peer}", "--logger", "zap", "--log-level", "warn",
        ])
        wait_port(self.port)

    def kill(self) -> None:
        """
        SIGKILL (no goodbye to its watchers).
        """
        self.started.process.send_signal(signal.SIGKILL)
        self.started.process.wait(10)
        self.processes.stop(self.started)

    def call(self, path: str, body: dict, timeout: float = 5.0) -> dict:
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())

    def put(self, key: str, value) -> int:
        if not isinstance(value, str):
            value = json.dumps(value)
        answer = self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(answer["header"]["revision"])

    def delete(self, key: str) -> int:
        answer = self.call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(answer["header"]["revision"])

    def compact(self, revision: int) -> None:
        self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})

    def pools(self) -> Dict[str, List[str]]:
        """
        The pools under the prefix: C{{name: [target, ...]}}.
        """
        answer = self.call("/v3/kv/range", {"key": _b64(PREFIX + "/pools/"),
                                            "range_end": _b64(PREFIX + "/pools0")})
        pools = {}
        for kv in answer.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            value = json.loads(base64.b64decode(kv.get("value", "")))
            pools[key.rsplit("/", 1)[1]] = sorted(
                t if isinstance(t, str) else t["address"] for t in value["targets"])
        return pools


def proxy_config(port: int, admin: int, etcd: Optional[str], targets: Sequence[int],
                 extra: str = "") -> str:
    text = f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
[admin]
listen = "tcp:{admin}:interface=127.0.0.1"
token = "fleet-bench-admin-token-0123456789"
[pools.web]
targets = [{", ".join(f'"127.0.0.1:{t}"' for t in targets)}]
[[routes]]
path = "/"
pool = "web"
"""
    if etcd is not None:
        text += f'[etcd]\nendpoints = ["{etcd}"]\nprefix = "{PREFIX}"\n'
    return text + extra


class Proxy:
    def __init__(self, processes: Processes, directory: str, name: str, config) -> None:
        """
        @param config: C{config(port, admin) -> text}.
        """
        self.port, self.admin = free_ports(2)
        self.name = name
        path = os.path.join(directory, f"{name}.toml")
        with open(path, "w") as f:
            f.write(config(self.port, self.admin))
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.started = processes.start(name, [sys.executable, twistd, "-n", "--pidfile=",
                                              "lbproxy", "--config", path], cwd=directory)
        try:
            wait_port(self.port)
            wait_port(self.admin)
        except RuntimeError as e:
            raise RuntimeError(f"{name}: {e}\n{self.started.tail()}") from None
        self._connection: Optional[http.client.HTTPConnection] = None

    def get(self, path: str = "/", timeout: float = 5.0):
        """
        C{(status, x-demo-backend)} over a kept-alive connection.
        """
        for attempt in (0, 1):
            if self._connection is None:
                self._connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                              timeout=timeout)
            try:
                self._connection.request("GET", path)
                response = self._connection.getresponse()
                response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self._connection.close()
                    self._connection = None
                return response.status, response.getheader("x-demo-backend")
            except (OSError, http.client.HTTPException):
                self._connection.close()
                self._connection = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def pools(self) -> Dict[str, List[str]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/api/status",
                                    timeout=5) as response:
            status = json.loads(response.read())
        pools = {}
        for name, pool in status["pools"].items():
            members = pool.get("targets", pool.get("members", []))
            pools[name] = sorted(m["address"] for m in members)
        return pools

    def log(self) -> str:
        with open(self.started.log, "rb") as f:
            return f.read().decode("utf-8", "replace")


def demos(processes: Processes, names: Sequence[str]) -> Dict[str, int]:
    ports = {}
    for name in names:
        (port,) = free_ports(1)
        processes.start(f"demo-{name}", [sys.executable, "-m", "lbproxy.demo", "--listen",
                                         f"tcp:{port}:interface=127.0.0.1", "--name", name])
        ports[name] = port
    for port in ports.values():
        wait_port(port)
    return ports


def wait_until(check, timeout: float, step: float = 0.0) -> float:
    """
    Call C{check()} until it is true; the seconds it took.

    @raise AssertionError: after C{timeout}.
    """
    start = time.monotonic()
    while True:
        if check():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached within {timeout} s")
        if step:
            time.sleep(step)


def routes_to(proxy: Proxy, name: str) -> bool:
    return proxy.get()[1] == name


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


class Redis:
    def __init__(self, processes: Processes, directory: str) -> None:
        (self.port,) = free_ports(1)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.processes = processes
        self.started = processes.start("redis", [
            shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
            "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory])
        wait_port(self.port)

    def stop(self) -> None:
        self.processes.stop(self.started)


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
