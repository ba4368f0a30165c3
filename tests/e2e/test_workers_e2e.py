"""
End-to-end: workers = 2 behind one set of listening sockets, supervised by
the main process.
"""

from __future__ import annotations

import os
import re
import signal
import time
from typing import List

from tests.e2e.harness import E2ETestCase, freePorts

WORKER_STARTED = re.compile(r"worker (\d+) started \(pid (\d+)\)")


class WorkersTests(E2ETestCase):
    def workerPids(self) -> List[int]:
        """
        The pids of the workers the main process says are running now.
        """
        current = {}
        for line in self.proxy.output(tail=None).splitlines():
            match = WORKER_STARTED.search(line)
            if match:
                current[match.group(1)] = int(match.group(2))
        return sorted(current.values())

    def waitFor(self, condition, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                self.fail(f"{what} within {timeout}s" + self.diag())
            time.sleep(0.1)

    def alive(self, pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def test_supervised(self) -> None:
        """
        Two workers serve the same port; a killed worker is restarted while
        the other keeps serving; SIGHUP reaches the workers without
        stopping them; SIGTERM stops them all.
        """
        port, = freePorts(1)
        backend = self.startDemo("b1")
        self.startProxy(
            f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
workers = 2
default_pool = "web"

[pools.web]
targets = ["127.0.0.1:{backend}"]
""",
            port,
        )
        self.waitFor(lambda: len(self.workerPids()) == 2, "two workers")
        for _ in range(10):
            response = self.curl(port, "/")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
        first, second = self.workerPids()
        os.kill(first, signal.SIGKILL)
        for _ in range(10):
            response = self.curl(port, "/")
            self.assertEqual(response.status, 200, response.describe() + self.diag())
        self.waitFor(
            lambda: len(self.workerPids()) == 2 and first not in self.workerPids(),
            "a new worker",
        )
        self.assertIn("restarting in", self.proxy.output(tail=None))
        workers = self.workerPids()
        os.kill(self.proxy.pid, signal.SIGHUP)
        self.waitFor(
            lambda: self.proxy.output(tail=None).count("SIGHUP: reopening") >= 2,
            "SIGHUP in both workers",
        )
        self.assertTrue(all(self.alive(pid) for pid in workers), self.diag())
        response = self.curl(port, "/")
        self.assertEqual(response.status, 200)
        self.proxy.stop()
        self.waitFor(lambda: not any(self.alive(pid) for pid in workers), "workers gone", 15)
