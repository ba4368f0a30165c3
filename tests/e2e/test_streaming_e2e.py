"""
What passes through the proxy, end to end: 200 MiB bodies both ways, byte
for byte, and the header policy (X-Forwarded-*, Host, hop-by-hop headers,
repeated Set-Cookie).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Tuple

from tests.e2e.harness import (
    E2ETestCase,
    parseHeaders,
    childEnvironment,
    freePorts,
    patternDigest,
)

BIG = 200 * 1024 * 1024

#: Seconds one 200 MiB transfer may take before curl gives up.
BIG_TRANSFER_TIMEOUT = 120


def singleBackendConfig(port: int, backend: int, extra: str = "") -> str:
    """
    A configuration sending every request to one backend.
    """
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
default_pool = "main"
# The uploads here are far above the 1 MiB default.
max_body_size = 0
{extra}

[pools.main]
targets = ["127.0.0.1:{backend}"]
"""


class SingleBackendTestCase(E2ETestCase):
    """
    One C{python -m lbproxy.demo} backend named C{b1} behind the proxy.
    """

    def setUp(self) -> None:
        super().setUp()
        backend = self.startDemo("b1")
        (port,) = freePorts(1)
        self.port = self.startProxy(singleBackendConfig(port, backend), port)


def writeRandomFile(path: Path, size: int) -> str:
    """
    Fill C{path} with C{size} random bytes.

    @return: Their SHA-256 hex digest.
    """
    digest = hashlib.sha256()
    block = 1024 * 1024
    with open(path, "wb") as f:
        for _ in range(size // block):
            data = os.urandom(block)
            digest.update(data)
            f.write(data)
    return digest.hexdigest()


class UploadTests(SingleBackendTestCase):
    """
    A 200 MiB request body reaches the backend unchanged.
    """

    def setUp(self) -> None:
        super().setUp()
        self.upload = self.workdir / "upload.bin"
        self.digest = writeRandomFile(self.upload, BIG)
        self.addCleanup(self.upload.unlink)

    def assertUploaded(self, *curlArgs: str) -> None:
        response = self.curl(
            self.port, "/echo", "-T", str(self.upload), *curlArgs,
            maxTime=BIG_TRANSFER_TIMEOUT,
        )
        self.assertEqual(response.status, 200, response.describe() + self.diag())
        echo = json.loads(response.body)
        self.assertEqual(echo["body_length"], BIG, response.describe())
        self.assertEqual(echo["body_sha256"], self.digest, response.describe())

    def test_contentLength(self) -> None:
        """
        An upload with Content-Length (curl C{-T FILE}).
        """
        self.assertUploaded()

    def test_chunked(self) -> None:
        """
        An upload with C{Transfer-Encoding: chunked}.
        """
        self.assertUploaded("-H", "Transfer-Encoding: chunked")


def stopCurl(curl: subprocess.Popen) -> None:
    """
    Kill C{curl} (by its PID) if it is still running, and reap it.
    """
    if curl.poll() is None:
        curl.kill()
        curl.wait(timeout=10)


class DownloadTests(SingleBackendTestCase):
    """
    A 200 MiB response body reaches the client unchanged, hashed as it
    streams in.
    """

    def download(self, path: str) -> Tuple[int, list, int, str, int, str]:
        """
        GET C{path} with curl, hashing the body from its stdout.

        @return: status, headers, body length, body SHA-256, curl's exit
            code and stderr.
        """
        headerFile = self.workdir / "download-headers"
        curl = subprocess.Popen(
            self.curlArgs(self.port, path, ["-D", str(headerFile)], BIG_TRANSFER_TIMEOUT),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=childEnvironment(),
        )
        self.addCleanup(stopCurl, curl)
        digest = hashlib.sha256()
        length = 0
        # Bounded: curl exits by itself after --max-time, which ends the loop.
        while True:
            chunk = curl.stdout.read(1024 * 1024)
            if not chunk:
                break
            length += len(chunk)
            digest.update(chunk)
        stderr = curl.stderr.read().decode("utf-8", "replace")
        exitCode = curl.wait(timeout=10)
        curl.stdout.close()
        curl.stderr.close()
        status, headers = parseHeaders(headerFile.read_bytes() if headerFile.exists() else b"")
        return status, headers, length, digest.hexdigest(), exitCode, stderr

    def assertDownloaded(self, path: str) -> list:
        started = time.monotonic()
        status, headers, length, digest, exitCode, stderr = self.download(path)
        what = (f"GET {path}: curl exit {exitCode} ({stderr.strip()}), status {status}, "
                f"{length} bytes in {time.monotonic() - started:.1f}s, headers {headers}")
        self.assertEqual((exitCode, status), (0, 200), what + self.diag())
        self.assertEqual(length, BIG, what)
        self.assertEqual(digest, patternDigest(BIG), what)
        return headers

    def test_contentLength(self) -> None:
        headers = self.assertDownloaded(f"/bytes/{BIG}")
        lengths = [v for k, v in headers if k.lower() == "content-length"]
        self.assertEqual(lengths, [str(BIG)], headers)

    def test_chunked(self) -> None:
        """
        A body of unknown length (chunked from the backend) arrives whole.
        """
        self.assertDownloaded(f"/bytes/{BIG}?chunked=1")


class HeaderTests(SingleBackendTestCase):
    """
    The header policy seen from the backend (through C{/echo}) and from the
    client.
    """

    def echoHeaders(self, *curlArgs: str, host: str = None) -> list:
        echo = self.curlJSON(self.port, "/echo", *curlArgs, host=host)
        return [(name.lower(), value) for name, value in echo["headers"]]

    def test_forwarded(self) -> None:
        """
        The backend sees X-Forwarded-For/-Proto/-Host and the client's Host.
        """
        headers = self.echoHeaders(host="www.example.com")
        values = {}
        for name, value in headers:
            values.setdefault(name, []).append(value)
        what = f"headers at the backend: {headers}"
        self.assertEqual(values.get("host"), ["www.example.com"], what)
        self.assertIn("127.0.0.1", ",".join(values.get("x-forwarded-for", [])), what)
        self.assertEqual(values.get("x-forwarded-proto"), ["http"], what)
        self.assertEqual(values.get("x-forwarded-host"), ["www.example.com"], what)

    def test_hopByHop(self) -> None:
        """
        Hop-by-hop headers, and headers the client's Connection names, stop
        at the proxy; ordinary headers go through.
        """
        headers = self.echoHeaders(
            "-H", "Connection: close, X-Drop",
            "-H", "X-Drop: 1",
            "-H", "Keep-Alive: timeout=5",
            "-H", "TE: trailers",
            "-H", "X-Keep: yes",
        )
        names = [name for name, _ in headers]
        what = f"headers at the backend: {headers}"
        for dropped in ("x-drop", "keep-alive", "te"):
            self.assertNotIn(dropped, names, what)
        for name, value in headers:
            if name == "connection":
                self.assertNotIn("x-drop", value.lower(), what)
        self.assertIn(("x-keep", "yes"), headers, what)

    def test_setCookies(self) -> None:
        """
        Three Set-Cookie headers from the backend reach the client as three.
        """
        response = self.curl(self.port, "/cookies")
        self.assertEqual(response.status, 200, response.describe() + self.diag())
        cookies = response.header("Set-Cookie")
        self.assertEqual(len(cookies), 3, response.describe())
        self.assertEqual(len({c.split("=")[0] for c in cookies}), 3, response.describe())


def residentKiB(pid: int) -> int:
    """
    The resident set size of process C{pid}, in KiB (Linux).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


class SlowClientTests(SingleBackendTestCase):
    """
    A client that stops reading pauses the backend: the proxy does not
    buffer the response in memory.
    """

    def test_stalledReaderBoundsMemory(self) -> None:
        """
        A client that reads 1 MiB of a 512 MiB response and then stops reading
        for a while leaves the proxy's memory where it was; reading on, it
        gets the whole body intact.
        """
        import socket

        size = 512 * 1024 * 1024
        before = residentKiB(self.proxy.pid)
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.addCleanup(sock.close)
        # A small receive buffer, so the kernel holds little on our side.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(f"GET /bytes/{size} HTTP/1.1\r\nHost: slow\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        head, body = received.split(b"\r\n\r\n", 1)
        digest = hashlib.sha256(body)
        length = len(body)
        while length < 1024 * 1024:
            chunk = sock.recv(65536)
            digest.update(chunk)
            length += len(chunk)
        # Stop reading; give the backend ample time to fill memory if
        # backpressure did not work (it would send hundreds of MiB).
        deadline = time.monotonic() + 3
        peak = before
        while time.monotonic() < deadline:
            peak = max(peak, residentKiB(self.proxy.pid))
            time.sleep(0.1)
        self.assertLess(peak - before, 64 * 1024, f"RSS {before} -> {peak} KiB" + self.diag())
        # Read on: the rest arrives, byte-exact.
        while length < size:
            chunk = sock.recv(1024 * 1024)
            if not chunk:
                break
            digest.update(chunk)
            length += len(chunk)
        self.assertEqual(length, size)
        self.assertEqual(digest.hexdigest(), patternDigest(size))
