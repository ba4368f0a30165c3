"""
Failures end to end: dead backends, slow backends, backends and clients
that vanish mid-transfer, and bad configuration files.
"""

from __future__ import annotations

import socket
import time

from tests.e2e.harness import E2ETestCase, freePorts
from tests.e2e.test_streaming_e2e import singleBackendConfig

#: The proxy's response_timeout in these tests, in seconds.
RESPONSE_TIMEOUT = 1

BAD_CONFIG = """
[server]
listen = "tcp:8080:interface=127.0.0.1"

[pools.web]
targets = ["127.0.0.1:notaport"]
"""
BAD_KEY = "pools.web.targets[0]"


class BackendFailureTests(E2ETestCase):
    """
    One healthy demo backend (C{/}), and a pool C{dead} (C{/dead}) whose
    targets are ports nothing listens on.
    """

    def setUp(self) -> None:
        super().setUp()
        backend = self.startDemo("b1")
        port, dead1, dead2 = freePorts(3)
        config = singleBackendConfig(
            port,
            backend,
            extra=f"connect_timeout = 2\nresponse_timeout = {RESPONSE_TIMEOUT}\n",
        )
        config += f"""
[pools.dead]
targets = ["127.0.0.1:{dead1}", "127.0.0.1:{dead2}"]

[[routes]]
path = "/dead"
pool = "dead"
"""
        self.port = self.startProxy(config, port)

    def assertStillServing(self) -> None:
        response = self.curl(self.port, "/healthz", maxTime=10)
        self.assertEqual(
            (response.status, response.body), (200, b"ok"), response.describe() + self.diag()
        )

    def test_deadPool(self) -> None:
        """
        A pool whose targets refuse connections answers 502 or 503 at once,
        request after request.
        """
        for _ in range(3):
            response = self.curl(self.port, "/dead/x", maxTime=15)
            what = response.describe() + self.diag()
            self.assertIn(response.status, (502, 503), what)
            self.assertLess(response.elapsed, 5.0, what)
        self.assertStillServing()

    def test_responseTimeout(self) -> None:
        """
        A backend that sends no response headers within response_timeout
        gets the client a 504.
        """
        response = self.curl(self.port, "/slow/5", maxTime=15)
        what = response.describe() + self.diag()
        self.assertEqual(response.status, 504, what)
        self.assertLess(response.elapsed, RESPONSE_TIMEOUT + 3.0, what)
        self.assertStillServing()

    def test_backendDiesMidResponse(self) -> None:
        """
        When the backend dies after part of the body, the client sees a
        transfer error, never a complete response.
        """
        response = self.curl(self.port, "/die", maxTime=15)
        what = response.describe() + self.diag()
        self.assertNotEqual(response.exitCode, 0, what)
        self.assertLess(len(response.body), 1000000, what)
        self.assertStillServing()

    def test_clientDisconnectsMidDownload(self) -> None:
        """
        A client that reads a little of a large download and hangs up
        leaves no unhandled error, and the proxy goes on serving.
        """
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
                s.sendall(
                    b"GET /bytes/100000000 HTTP/1.1\r\nHost: e2e.test\r\n\r\n"
                )
                received = 0
                deadline = time.monotonic() + 10
                # Bounded by bytes and by time.
                while received < 256 * 1024 and time.monotonic() < deadline:
                    data = s.recv(65536)
                    if not data:
                        break
                    received += len(data)
                self.assertGreater(received, 64 * 1024, self.diag())
            self.assertStillServing()
        time.sleep(1.0)  # let any error the hang-ups caused reach the log
        self.assertStillServing()
        self.assertNoUnhandledErrors()


class ConfigCheckTests(E2ETestCase):
    """
    C{--check} and starting with a bad configuration.
    """

    def twistd(self, path, *extra: str):
        result = self.runTwistd(["-n", "--pidfile=", "lbproxy", "--config", str(path), *extra])
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        return result.returncode, output

    def test_checkGood(self) -> None:
        path = self.writeConfig(singleBackendConfig(8080, 8081))
        code, output = self.twistd(path, "--check")
        self.assertEqual(code, 0, output)

    def test_checkShipped(self) -> None:
        """
        The shipped configurations pass C{--check}.
        """
        from tests.e2e.harness import REPO_ROOT

        for path in (REPO_ROOT / "config.toml", REPO_ROOT / "examples" / "bwss.toml"):
            code, output = self.twistd(path, "--check")
            self.assertEqual(code, 0, f"{path}: {output}")

    def test_checkBad(self) -> None:
        """
        C{--check} on a bad file exits non-zero naming the file and the key.
        """
        path = self.writeConfig(BAD_CONFIG)
        code, output = self.twistd(path, "--check")
        self.assertNotEqual(code, 0, output)
        self.assertIn(f"{path}: {BAD_KEY}", output)

    def test_checkMissing(self) -> None:
        path = self.workdir / "missing.toml"
        code, output = self.twistd(path, "--check")
        self.assertNotEqual(code, 0, output)
        self.assertIn(str(path), output)

    def test_startBad(self) -> None:
        """
        Starting on a bad file exits non-zero with the same message, instead
        of running.
        """
        path = self.writeConfig(BAD_CONFIG)
        code, output = self.twistd(path)
        self.assertNotEqual(code, 0, output)
        self.assertIn(f"{path}: {BAD_KEY}", output)
