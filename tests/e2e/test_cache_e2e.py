"""
The cache and compression end to end: the real C{twistd lbproxy} and a real
backend (L{bench.cache_backend}) that counts its requests, driven by curl
and raw sockets.
"""

from __future__ import annotations

import gzip
import json
import socket
import sys
import threading
import time
import zlib
from typing import List

from bench.cache_backend import html_body, json_body
from tests.e2e.harness import E2ETestCase, freePorts

try:
    import brotli as _brotli
except ImportError:  # PyPy
    import brotlicffi as _brotli  # type: ignore[no-redef]

#: Concurrent cold misses in the coalescing test (the benchmark does 1,000).
CONCURRENT = 200


def proxyConfig(port: int, backend: int, log: str) -> str:
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
access_log = "{log}"
request_id_header = false

[cache]
max_bytes = "64MiB"
max_object = "4MiB"

[pools.web]
targets = ["127.0.0.1:{backend}"]

[[routes]]
path = "/c"
pool = "web"
cache = true
compress = true

[[routes]]
path = "/events"
pool = "web"
compress = true

[[routes]]
path = "/json"
pool = "web"
compress = {{ min_size = 100, level = 6 }}

[[routes]]
path = "/count"
pool = "web"
"""


def rawGet(port: int, path: str, headers: str = "", timeout: float = 30.0) -> bytes:
    """
    One HTTP/1.1 request on its own connection (closed after), the whole
    response returned.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n{headers}\r\n"
                  .encode("ascii"))
        parts = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            parts.append(data)
    return b"".join(parts)


def splitResponse(raw: bytes):
    head, _, body = raw.partition(b"\r\n\r\n")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        out = b""
        while body:
            size, _, body = body.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            out += body[:n]
            body = body[n + 2:]
        body = out
    return int(head.split(b" ")[1]), headers, body


class CacheE2ETests(E2ETestCase):
    def setUp(self) -> None:
        super().setUp()
        backendPort, port = freePorts(2)
        backend = self.start("cache-backend", [sys.executable, "-m", "bench.cache_backend",
                                               "--port", str(backendPort)])
        self.waitForPorts(backend, [backendPort])
        self.log = self.workdir / "access.log"
        self.port = self.startProxy(proxyConfig(port, backendPort, str(self.log)), port)

    def counts(self) -> dict:
        return self.curlJSON(self.port, "/count")

    def test_hitsAndMissesByteExact(self):
        expected = html_body(300000)
        labels = []
        for _ in range(3):
            response = self.curl(self.port, "/c/page?size=300000")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
            self.assertEqual(response.body, expected)
            labels.append(response.header("X-Cache"))
        self.assertEqual(labels, [["MISS"], ["HIT"], ["HIT"]])
        hit = self.curl(self.port, "/c/page?size=300000")
        self.assertEqual(hit.header("Content-Length"), ["300000"])
        self.assertEqual(len(hit.header("Age")), 1)
        head = self.curl(self.port, "/c/page?size=300000", "-I")
        self.assertEqual(head.header("X-Cache"), ["HIT"])
        # A compressed variant is another entry; then it is a hit too.
        for label in ("MISS", "HIT"):
            gz = self.curl(self.port, "/c/page?size=300000", "-H", "Accept-Encoding: gzip")
            self.assertEqual(gz.header("X-Cache"), [label])
            self.assertEqual(gz.header("Content-Encoding"), ["gzip"])
            self.assertEqual(gzip.decompress(gz.body), expected)
        self.assertEqual(self.counts(), {"/c/page": 2})
        log = self.log.read_text()
        self.assertIn("cache=MISS", log)
        self.assertIn("cache=HIT", log)
        self.assertNoUnhandledErrors()

    def test_coalescing(self):
        """
        Concurrent misses for one cold key: one backend request, every
        client gets the body byte for byte.
        """
        path = "/c/cold?size=20000&delay=1.5"
        results: List[bytes] = [b""] * CONCURRENT
        errors: List[str] = []

        def fetch(i: int) -> None:
            try:
                results[i] = rawGet(self.port, path)
            except OSError as e:
                errors.append(str(e))

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(CONCURRENT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        expected = html_body(20000)
        labels = []
        for raw in results:
            status, headers, body = splitResponse(raw)
            self.assertEqual((status, body), (200, expected))
            labels.append(headers[b"x-cache"])
        self.assertEqual(self.counts(), {"/c/cold": 1})
        self.assertEqual(labels.count(b"MISS"), 1)
        self.assertEqual(labels.count(b"HIT"), CONCURRENT - 1)

    def test_eventStreamNotDelayed(self):
        """
        Server-sent events through a compressing route: each event can be
        decoded as soon as the backend sends it, not at the end.
        """
        every = 0.6
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            started = time.monotonic()
            s.sendall(b"GET /events?count=4&every=%g HTTP/1.1\r\nHost: h\r\n"
                      b"Accept-Encoding: gzip\r\nConnection: close\r\n\r\n" % (every,))
            raw = b""
            while b"\r\n\r\n" not in raw:
                raw += s.recv(65536)
            head, _, rest = raw.partition(b"\r\n\r\n")
            self.assertIn(b"Content-Encoding: gzip", head)
            decoder = zlib.decompressobj(31)
            arrivals = []
            text = b""
            pending = rest
            while len(arrivals) < 4:
                # Decode whole chunks as they come.
                while b"\r\n" in pending:
                    size, _, after = pending.partition(b"\r\n")
                    n = int(size, 16)
                    if n == 0 or len(after) < n + 2:
                        break
                    text += decoder.decompress(after[:n])
                    pending = after[n + 2:]
                    while text.count(b"\n\n") > len(arrivals):
                        arrivals.append(time.monotonic() - started)
                if len(arrivals) >= 4:
                    break
                data = s.recv(65536)
                if not data:
                    break
                pending += data
        self.assertEqual(len(arrivals), 4, text)
        self.assertEqual(text, b"".join(b"data: event %d\n\n" % i for i in range(4)))
        # The first event came long before the stream ended, the others one
        # by one.
        self.assertLess(arrivals[0], every * 1.5, arrivals)
        self.assertGreater(arrivals[3] - arrivals[0], every * 2, arrivals)

    def test_curlCompressed(self):
        expected = json_body(200000)
        for coding, decode in (("gzip", gzip.decompress), ("br", _brotli.decompress)):
            raw = self.curl(self.port, "/json?size=200000", "-H", f"Accept-Encoding: {coding}")
            self.assertEqual(raw.header("Content-Encoding"), [coding])
            self.assertEqual(raw.header("Vary"), ["Accept-Encoding"])
            self.assertEqual(decode(raw.body), expected)
            self.assertLess(len(raw.body), len(expected) // 4)
            decoded = self.curl(self.port, "/json?size=200000", "--compressed",
                                "-H", f"Accept-Encoding: {coding}")
            self.assertEqual(decoded.header("Content-Encoding"), [coding])
            self.assertEqual(decoded.body, expected, decoded.describe())
        plain = self.curl(self.port, "/json?size=200000")
        self.assertEqual(plain.body, expected)
        self.assertEqual(plain.header("Content-Encoding"), [])
        self.assertEqual(json.loads(self.curl(self.port, "/count").body)["/json"], 5)
