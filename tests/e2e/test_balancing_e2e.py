"""
Balancing and traffic shaping end to end, through C{twistd -n lbproxy}
with real demo backends: a weighted pool's shares, a split route's ratio
and header override, a sticky cookie that holds a client on one backend
until that backend is killed, and a mirror receiving copies while the
primary answers (and adding no latency when the mirror is dead or never
answers).
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from collections import Counter
from typing import Dict, List, Optional, Tuple

from tests.e2e.harness import E2ETestCase, freePorts

#: A sticky secret for the tests (any 16 characters or more).
SECRET = "e2e sticky secret, not a real one"


class Client:
    """
    One kept-alive HTTP/1.1 connection to the proxy (curl would spend a
    process per request).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)

    def get(self, path: str = "/", headers: Optional[Dict[str, str]] = None):
        self.conn.request("GET", path, headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        return response.status, response, body

    def close(self) -> None:
        self.conn.close()


class BalancingE2ETests(E2ETestCase):
    def demos(self, names, logRequests=False) -> Dict[str, int]:
        ports = {}
        for name in names:
            if logRequests:
                (port,) = freePorts(1)
                argv = [sys.executable, "-m", "lbproxy.demo", "--listen",
                        f"tcp:{port}:interface=127.0.0.1", "--name", name, "--log-requests"]
                self.waitForPorts(self.start(f"demo-{name}", argv), [port])
                ports[name] = port
            else:
                ports[name] = self.startDemo(name)
        return ports

    def client(self, port: int) -> Client:
        client = Client(port)
        self.addCleanup(client.close)
        return client

    def backendOf(self, response) -> str:
        return response.getheader("X-Demo-Backend")

    def test_weightedShares(self) -> None:
        """
        Weights 3, 2, 1 give exactly 3:2:1 over 60 requests (smooth
        weighted round robin), and least_conn shares 60 sequential
        requests over three equal backends exactly.
        """
        ports = self.demos(["w3", "w2", "w1"])
        (port,) = freePorts(1)
        self.startProxy(f"""
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
access_log = false

[pools.weighted]
targets = [
  {{ address = "127.0.0.1:{ports['w3']}", weight = 3 }},
  {{ address = "127.0.0.1:{ports['w2']}", weight = 2 }},
  {{ address = "127.0.0.1:{ports['w1']}", weight = 1 }},
]

[pools.least]
balance = "least_conn"
targets = ["127.0.0.1:{ports['w3']}", "127.0.0.1:{ports['w2']}", "127.0.0.1:{ports['w1']}"]

[[routes]]
path = "/least"
pool = "least"

[[routes]]
path = "/"
pool = "weighted"
""", port)
        client = self.client(port)
        names = []
        for _ in range(60):
            status, response, _ = client.get("/")
            self.assertEqual(status, 200, self.diag())
            names.append(self.backendOf(response))
        self.assertEqual(Counter(names), {"w3": 30, "w2": 20, "w1": 10}, self.diag())
        # Every window of 6 requests has the exact shares (no bursts).
        for start in range(0, 60, 6):
            self.assertEqual(Counter(names[start:start + 6]), {"w3": 3, "w2": 2, "w1": 1})
        least = Counter(self.backendOf(client.get("/least")[1]) for _ in range(60))
        self.assertEqual(least, {"w3": 20, "w2": 20, "w1": 20}, self.diag())

    def test_hashKeepsKeys(self) -> None:
        """
        C{balance = "hash"} on a header: each of 40 users always reaches
        the same backend, and the users are spread over all three.
        """
        ports = self.demos(["h1", "h2", "h3"])
        (port,) = freePorts(1)
        targets = ", ".join(f'"127.0.0.1:{ports[n]}"' for n in ("h1", "h2", "h3"))
        self.startProxy(f"""
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
access_log = false

[pools.cache]
balance = "hash"
hash_key = "header:X-User"
hash_balance_factor = 1.25
targets = [{targets}]

[[routes]]
path = "/"
pool = "cache"
""", port)
        client = self.client(port)
        homes = {}
        for user in range(40):
            seen = {
                self.backendOf(client.get("/", {"X-User": f"user{user}"})[1]) for _ in range(3)
            }
            self.assertEqual(len(seen), 1, (user, seen))
            homes[user] = seen.pop()
        self.assertEqual(set(homes.values()), {"h1", "h2", "h3"})

    def test_splitAndHeader(self) -> None:
        """
        A 80/20 split over 1,000 requests lands within 4 % of its weights;
        the header names a side whatever the weights.
        """
        ports = self.demos(["stable", "canary"])
        (port,) = freePorts(1)
        self.startProxy(f"""
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
access_log = false

[pools.stable]
targets = ["127.0.0.1:{ports['stable']}"]

[pools.canary]
targets = ["127.0.0.1:{ports['canary']}"]

[[routes]]
path = "/"
split = [{{ pool = "stable", weight = 80 }}, {{ pool = "canary", weight = 20 }}]
split_header = "X-Canary"
""", port)
        client = self.client(port)
        counts = Counter(self.backendOf(client.get("/")[1]) for _ in range(1000))
        self.assertLessEqual(abs(counts["canary"] / 1000 - 0.20), 0.04, counts)
        self.assertEqual(counts["stable"] + counts["canary"], 1000)
        for _ in range(20):
            self.assertEqual(self.backendOf(client.get("/", {"X-Canary": "canary"})[1]), "canary")
            self.assertEqual(self.backendOf(client.get("/", {"X-Canary": "stable"})[1]), "stable")

    def test_stickyUntilKilled(self) -> None:
        """
        A client holding the cookie stays on its backend; when that
        backend is killed it is moved to another and pinned there.
        """
        ports = self.demos(["s1", "s2", "s3"])
        (port,) = freePorts(1)
        self.startProxy(f"""
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
access_log = false

[pools.app]
targets = ["127.0.0.1:{ports['s1']}", "127.0.0.1:{ports['s2']}", "127.0.0.1:{ports['s3']}"]
sticky = {{ cookie = "lbs", ttl = 600, secret = "{SECRET}" }}

[[routes]]
path = "/"
pool = "app"
""", port)
        client = self.client(port)
        status, response, _ = client.get("/")
        first = self.backendOf(response)
        setCookie = response.getheader("Set-Cookie")
        self.assertIsNotNone(setCookie, self.diag())
        self.assertNotIn(str(ports[first]), setCookie)
        cookie = setCookie.split(";")[0]
        for _ in range(20):
            status, response, _ = client.get("/", {"Cookie": cookie})
            self.assertEqual((status, self.backendOf(response)), (200, first))
            self.assertIsNone(response.getheader("Set-Cookie"))
        # Without the cookie, requests are spread.
        spread = {self.backendOf(client.get("/")[1]) for _ in range(6)}
        self.assertEqual(spread, {"s1", "s2", "s3"})
        [victim] = [p for p in self.processes if p.name == f"demo-{first}"]
        victim.stop()
        status, response, _ = client.get("/", {"Cookie": cookie})
        moved = self.backendOf(response)
        self.assertEqual(status, 200, self.diag())
        self.assertNotEqual(moved, first)
        newCookie = response.getheader("Set-Cookie").split(";")[0]
        for _ in range(10):
            status, response, _ = client.get("/", {"Cookie": newCookie})
            self.assertEqual((status, self.backendOf(response)), (200, moved))

    def mirrorConfig(self, port: int, primary: int, mirror: int) -> str:
        return f"""
[server]
listen = ["tcp:{port}:interface=127.0.0.1"]
access_log = false
connect_timeout = 2

[pools.main]
targets = ["127.0.0.1:{primary}"]

[pools.shadow]
targets = ["127.0.0.1:{mirror}"]

[[routes]]
path = "/plain"
pool = "main"

[[routes]]
path = "/"
pool = "main"
mirror = {{ pool = "shadow", percent = 100, timeout = 15, max_inflight = 20 }}
"""

    def test_mirrorReceivesCopies(self) -> None:
        """
        Every request on the mirrored route reaches the mirror too, body
        included; the client gets the primary's answer.
        """
        ports = self.demos(["primary"])
        ports.update(self.demos(["shadow"], logRequests=True))
        (port,) = freePorts(1)
        self.startProxy(self.mirrorConfig(port, ports["primary"], ports["shadow"]), port)
        client = self.client(port)
        for n in range(10):
            status, response, body = client.get(f"/echo/{n}")
            self.assertEqual((status, self.backendOf(response)), (200, "primary"))
        client.conn.request("POST", "/echo/body", body=b"x" * 1000)
        response = client.conn.getresponse()
        response.read()
        self.assertEqual(self.backendOf(response), "primary")
        [shadow] = [p for p in self.processes if p.name == "demo-shadow"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            lines = [line for line in shadow.output(None).splitlines() if "/echo/" in line]
            if len(lines) >= 11:
                break
            time.sleep(0.1)
        self.assertEqual(len(lines), 11, self.diag())
        self.assertTrue(any("POST /echo/body" in line for line in lines), lines)
        self.assertNoUnhandledErrors()

    def latencies(self, client: Client, path: str, count: int) -> List[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            status, _, _ = client.get(path)
            times.append(time.perf_counter() - started)
            self.assertEqual(status, 200, self.diag())
        return sorted(times)

    def test_mirrorAddsNoLatency(self) -> None:
        """
        With a mirror that never answers (connections accepted by the
        kernel, nothing read: slower than any timeout) and with a dead
        mirror (nothing listening), the primary's p99 over 300 requests is
        within 20 ms of the same route without a mirror, measured side by
        side, interleaved.
        """
        (primary,) = self.demos(["primary"]).values()
        hole = socket.socket()
        hole.bind(("127.0.0.1", 0))
        hole.listen(512)
        self.addCleanup(hole.close)
        (dead,) = freePorts(1)
        results: List[Tuple[str, float, float]] = []
        for label, mirror in (("silent", hole.getsockname()[1]), ("dead", dead)):
            (port,) = freePorts(1)
            self.startProxy(self.mirrorConfig(port, primary, mirror), port)
            client = self.client(port)
            self.latencies(client, "/plain", 50)  # warm up
            plain: List[float] = []
            mirrored: List[float] = []
            for _ in range(6):
                plain += self.latencies(client, "/plain", 50)
                mirrored += self.latencies(client, "/m", 50)
            plain.sort()
            mirrored.sort()
            p99 = lambda values: values[int(len(values) * 0.99) - 1]  # noqa: E731
            results.append((label, p99(plain), p99(mirrored)))
            self.assertLess(p99(mirrored), p99(plain) + 0.020, results)
            self.proxy.stop()
        print("\nmirror p99 (s): " + ", ".join(
            f"{label}: plain {a:.4f} mirrored {b:.4f}" for label, a, b in results))
