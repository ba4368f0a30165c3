"""
End-to-end edge protection: smuggling attempts over raw sockets against a
backend that logs every request it parses, a slowloris client, and many
idle connections.
"""

from __future__ import annotations

import re
import socket
import sys
import time
from typing import List, Tuple

from tests.e2e.harness import E2ETestCase, freePorts

#: Attempts to make the proxy and the backend disagree on where a request
#: ends. Each is sent on its own connection; the marker "SMUGGLED" is in
#: every smuggled part.
SMUGGLING: List[Tuple[str, bytes]] = [
    (
        "CL.TE",
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 35\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\nGET /SMUGGLED HTTP/1.1\r\nX: x",
    ),
    (
        "TE.CL",
        b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE duplicate",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"
        b"Content-Length: 4\r\n\r\n2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n"
        b"0\r\n\r\n",
    ),
    (
        "TE.TE space before colon",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\nContent-Length: 4\r\n\r\n"
        b"2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE obs-fold",
        b"POST /a HTTP/1.1\r\nHost: h\r\nX: y\r\n Transfer-Encoding: chunked\r\nContent-Length: 4"
        b"\r\n\r\n2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE xchunked",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n"
        b"2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE chunked, identity",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n"
        b"2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "TE.TE bare LF",
        b"POST /a HTTP/1.1\r\nHost: h\r\nX: y\nTransfer-Encoding: chunked\r\nContent-Length: 4"
        b"\r\n\r\n2c\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\nX: 123456\r\n\r\n0\r\n\r\n",
    ),
    (
        "chunk size overflow",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"10000000000000000\r\nGET /SMUGGLED HTTP/1.1\r\nHost: h\r\n\r\n0\r\n\r\n",
    ),
    (
        "trailer framing",
        b"POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nContent-Length: 40\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n",
    ),
]

# (time, client, request line, status: the text format.)
ACCESS_LINE = re.compile(r'^\S+Z \S+ "([A-Z]+) (\S+) HTTP/1\.[01]" (\d{3}) ')


def config(port: int, backend: int, headerTimeout: float = 2.0) -> str:
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
default_pool = "web"
client_header_timeout = {headerTimeout}

[pools.web]
targets = ["127.0.0.1:{backend}"]
"""


def exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """
    Send raw bytes on a new connection; read until the proxy closes it or
    C{timeout} passes.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
        return received


class EdgeTestCase(E2ETestCase):
    def setUp(self) -> None:
        super().setUp()
        self.proxyPort, self.backendPort = freePorts(2)
        self.backend = self.start(
            "recorder",
            [sys.executable, "-m", "lbproxy.demo", "--listen",
             f"tcp:{self.backendPort}:interface=127.0.0.1", "--name", "recorder",
             "--log-requests"],
        )
        self.waitForPorts(self.backend, [self.backendPort])

    def backendRequests(self) -> List[str]:
        return [
            line.split(" ", 2)[2]
            for line in self.backend.output(tail=None).splitlines()
            if line.startswith("request ")
        ]

    def forwarded(self) -> List[str]:
        """
        The URIs of requests the proxy's access log says a target answered
        (not those the proxy refused itself, even after it had started
        connecting to a target).
        """
        uris = []
        for line in self.proxy.output(tail=None).splitlines():
            match = ACCESS_LINE.match(line)
            if match and "target=-" not in line and "upstream=-" not in line:
                if match.group(3) not in ("400", "408", "413", "414", "431", "499"):
                    uris.append(match.group(2))
        return uris


class SmugglingTests(EdgeTestCase):
    def test_noSmuggledRequestReachesBackend(self) -> None:
        """
        CL.TE, TE.CL and TE.TE attempts: each is refused (400) or forwarded
        re-framed; the backend parses exactly the requests the proxy
        forwarded, never a smuggled one.
        """
        self.startProxy(config(self.proxyPort, self.backendPort), self.proxyPort)
        results = {}
        for name, data in SMUGGLING:
            response = exchange(self.proxyPort, data)
            results[name] = response.split(b"\r\n", 1)[0].decode("latin-1")
        # Let the backend's log catch up (bounded).
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(self.backendRequests()) < len(self.forwarded()):
            time.sleep(0.05)
        seen = self.backendRequests()
        summary = "\n".join(f"{name}: {status}" for name, status in results.items())
        self.assertEqual(sorted(seen), sorted(self.forwarded()), summary + self.diag())
        self.assertFalse([uri for uri in seen if "SMUGGLED" in uri], summary)
        for name in ("CL.TE", "TE.CL", "TE.TE duplicate", "TE.TE space before colon",
                     "TE.TE obs-fold", "TE.TE xchunked", "TE.TE chunked, identity",
                     "TE.TE bare LF", "chunk size overflow"):
            self.assertEqual(results[name], "HTTP/1.1 400 Bad Request", summary)
        # The trailer's Content-Length is ignored; what follows the body is
        # a second request the proxy saw and forwarded itself.
        self.assertEqual(seen.count("/b"), 1, summary)
        print("\n" + summary)


class SlowClientTests(EdgeTestCase):
    def test_slowloris(self) -> None:
        """
        A client sending one header byte a second is cut off by the header
        timeout while other clients are served.
        """
        self.startProxy(config(self.proxyPort, self.backendPort), self.proxyPort)
        slow = socket.create_connection(("127.0.0.1", self.proxyPort), timeout=10)
        self.addCleanup(slow.close)
        slow.settimeout(0.05)
        head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: " + b"a" * 100
        started = time.monotonic()
        closedAfter = None
        answer = b""
        served = 0
        for index in range(8):
            try:
                slow.sendall(head[index : index + 1])
            except OSError:
                pass
            response = self.curl(self.proxyPort, "/")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
            served += 1
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                try:
                    chunk = slow.recv(4096)
                except socket.timeout:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    closedAfter = time.monotonic() - started
                    break
                answer += chunk
            if closedAfter is not None:
                break
        self.assertIsNotNone(closedAfter, "the slow client was never cut off" + self.diag())
        self.assertLess(closedAfter, 4.0)
        self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer)
        self.assertGreaterEqual(served, 2)


class IdleConnectionTests(EdgeTestCase):
    def test_thousandIdle(self) -> None:
        """
        1,000 connections opened and left idle do not stop new clients from
        being served.
        """
        self.startProxy(
            config(self.proxyPort, self.backendPort, headerTimeout=30.0),
            self.proxyPort,
        )
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < 4096:
            # This test's own 1,000 sockets need room (the proxy raises its
            # limit itself).
            wanted = hard if hard == resource.RLIM_INFINITY else min(hard, 4096)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        idle = []
        try:
            for _ in range(1000):
                idle.append(socket.create_connection(("127.0.0.1", self.proxyPort), timeout=5))
            started = time.monotonic()
            for _ in range(5):
                response = self.curl(self.proxyPort, "/")
                self.assertEqual(response.status, 200, response.describe() + self.diag())
            self.assertLess(time.monotonic() - started, 5.0)
        finally:
            for sock in idle:
                sock.close()


class ProxyProtocolTests(EdgeTestCase):
    def test_proxyProtocolV1(self) -> None:
        """
        With proxy_protocol = true, the client address a PROXY v1 header
        names is the client: in X-Forwarded-For and the access log.
        """
        self.startProxy(
            config(self.proxyPort, self.backendPort).replace(
                "[server]\n", "[server]\nproxy_protocol = true\n"
            ),
            self.proxyPort,
        )
        response = exchange(
            self.proxyPort,
            b"PROXY TCP4 203.0.113.9 127.0.0.1 51000 80\r\n"
            b"GET /echo HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:200])
        self.assertIn(b'["X-Forwarded-For", "203.0.113.9"]', response)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "203.0.113.9 \"GET /echo" not in self.proxy.output():
            time.sleep(0.05)
        self.assertIn('203.0.113.9 "GET /echo HTTP/1.1" 200', self.proxy.output())

    def test_withoutHeaderRefused(self) -> None:
        """
        A connection without the PROXY header is not served.
        """
        self.startProxy(
            config(self.proxyPort, self.backendPort).replace(
                "[server]\n", "[server]\nproxy_protocol = true\n"
            ),
            self.proxyPort,
        )
        response = exchange(self.proxyPort, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", timeout=3)
        self.assertFalse(response.startswith(b"HTTP/1.1 200"), response[:200])
        self.assertEqual(self.backendRequests(), [])
