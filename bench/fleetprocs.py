# -*- test-case-name: tests.e2e.test_fleet_e2e -*-
"""
The processes of a fleet, for C{bench/fleet.py} and the end-to-end tests:
an etcd member, lbproxy instances, demo backends, redis-server; each on
free loopback ports, stopped through L{bench.harness.Processes}.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import sys
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

    token: Optional[str] = None

    def enable_auth(self, password: str) -> None:
        """
        Authentication on, with a C{root} user; later calls use its token.
        """
        self.call("/v3/auth/user/add", {"name": "root", "password": password})
        self.call("/v3/auth/user/grant", {"user": "root", "role": "root"})
        self.call("/v3/auth/enable", {})
        self.token = self.call("/v3/auth/authenticate",
                               {"name": "root", "password": password})["token"]

    def call(self, path: str, body: dict, timeout: float = 5.0) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                         headers=headers)
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
