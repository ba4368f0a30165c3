"""
Operating the real proxy: start-up failure as a daemon (the launching
twistd exits 1 with the reason instead of waiting forever), systemd
readiness against a socket the test listens on, the access log of a
daemon in its twistd log, C{lbproxy check}, and C{/metrics} scraped over
HTTP.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.harness import E2ETestCase, childEnvironment, freePorts, portIsOpen

TOKEN = "e2e-admin-token-0123456789"


def config(port: int, backend: int, extra: str = "", admin: int = 0) -> str:
    text = f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
{extra}

[pools.web]
targets = ["127.0.0.1:{backend}"]

[[routes]]
pool = "web"
"""
    if admin:
        text += f'\n[admin]\nlisten = "tcp:{admin}:interface=127.0.0.1"\ntoken = "{TOKEN}"\n'
    return text


class DaemonTests(E2ETestCase):
    def test_portInUse(self) -> None:
        """
        As a daemon, a port in use ends start-up: the launching twistd
        exits 1 within seconds, saying why; the twistd log says it too.
        """
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        path = self.writeConfig(config(port, 9, "access_log = false"))
        began = time.monotonic()
        result = self.runTwistd(
            ["--pidfile=lb.pid", "--logfile=twistd.log", "lbproxy", "--config", str(path)],
            timeout=20,
        )
        self.assertEqual(result.returncode, 1, result)
        self.assertLess(time.monotonic() - began, 15)
        self.assertIn(b"cannot listen on 127.0.0.1:%d: Address already in use" % (port,),
                      result.stderr)
        log = (self.workdir / "twistd.log").read_text()
        self.assertIn("lbproxy: cannot listen on 127.0.0.1:%d" % (port,), log)
        self.assertFalse((self.workdir / "lb.pid").exists())

    def test_accessLogInTwistdLog(self) -> None:
        """
        As a daemon, C{access_log = "-"} lines go to the twistd log.
        """
        backend = self.startDemo("web")
        (port,) = freePorts(1)
        path = self.writeConfig(config(port, backend, 'access_log = "-"\n'
                                       'access_log_format = "json"'))
        result = self.runTwistd(
            ["--pidfile=lb.pid", "--logfile=twistd.log", "lbproxy", "--config", str(path)]
        )
        self.assertEqual(result.returncode, 0, result)
        pid = int((self.workdir / "lb.pid").read_text())
        self.addCleanup(self._stopDaemon, pid)
        deadline = time.monotonic() + 20
        while not portIsOpen(port):
            self.assertLess(time.monotonic(), deadline, "the daemon never listened")
            time.sleep(0.05)
        self.assertEqual(self.curl(port, "/daemon-check").status, 200)
        log = self.workdir / "twistd.log"
        deadline = time.monotonic() + 5
        while '"target":"/daemon-check"' not in log.read_text():
            self.assertLess(time.monotonic(), deadline, log.read_text())
            time.sleep(0.05)
        text = log.read_text()
        self.assertIn("[lbproxy.access#info]", text)
        self.assertIn("lbproxy 0.1.0 started: 1 listener", text)

    def _stopDaemon(self, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
        os.kill(pid, signal.SIGKILL)


class ForegroundTests(E2ETestCase):
    def test_readiness(self) -> None:
        """
        Under systemd (C{NOTIFY_SOCKET} set), READY=1 arrives once the
        listener accepts connections, with the start-up line as status.
        """
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(server.close)
        # (A short path: AF_UNIX paths have ~100 bytes.)
        directory = tempfile.mkdtemp(prefix="lbn")
        self.addCleanup(shutil.rmtree, directory, True)
        address = os.path.join(directory, "notify")
        server.bind(address)
        server.settimeout(20)
        (port,) = freePorts(1)
        path = self.writeConfig(config(port, 9, "access_log = false"))
        self.patch(os, "environ", dict(os.environ, NOTIFY_SOCKET=address))
        # Through the console script: lbproxy run = twistd -n --pidfile= lbproxy.
        self.proxy = self.start(
            "lbproxy", [str(Path(sys.executable).parent / "lbproxy"), "run", "--config", str(path)]
        )
        message = server.recv(1000).decode()
        self.assertTrue(portIsOpen(port), "READY=1 before the port was open")
        self.assertEqual(
            message,
            "READY=1\nSTATUS=lbproxy 0.1.0 started: 1 listener "
            "(tcp:%d:interface=127.0.0.1), 1 pool, 1 route" % (port,),
        )

    def test_check(self) -> None:
        """
        C{lbproxy check} finds an access log start-up could not open.
        """
        path = self.writeConfig(config(8080, 9, 'access_log = "/nonexistent/access.log"'))
        result = subprocess.run(
            [str(Path(sys.executable).parent / "lbproxy"), "check", str(path)],
            capture_output=True, env=childEnvironment(), timeout=30,
        )
        self.assertEqual(result.returncode, 2)
        self.assertEqual(
            result.stderr.decode(),
            "lbproxy: configuration error: %s: server.access_log: /nonexistent/access.log: "
            "directory /nonexistent does not exist\n" % (path,),
        )

    def test_metrics(self) -> None:
        """
        C{/metrics} on the admin listener, scraped over HTTP after a few
        requests, parses and counts them.
        """
        backend = self.startDemo("web")
        port, admin = freePorts(2)
        self.startProxy(config(port, backend, "access_log = false", admin=admin), port,
                        alsoWaitFor=[admin])
        for _ in range(5):
            self.assertEqual(self.curl(port, "/x").status, 200)
        self.curl(port, "/", "-X", "BREW")
        response = self.curl(admin, "/metrics")
        self.assertEqual(response.status, 200)
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.body.decode())
            for s in family.samples
        }
        self.assertEqual(
            samples[("lbproxy_requests_total", (("method", "GET"), ("pool", "web"),
                                                ("route", "0"), ("status_class", "2xx")))],
            5.0,
        )
        self.assertEqual(
            samples[("lbproxy_target_state", (("pool", "web"),
                                              ("state", "up"),
                                              ("target", "127.0.0.1:%d" % (backend,))))],
            1.0,
        )
