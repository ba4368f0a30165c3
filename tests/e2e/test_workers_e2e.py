"""
End-to-end: workers = 2 behind one set of listening sockets, supervised by
the main process.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import List, Set

from twisted.trial.unittest import SkipTest, TestCase

from lbproxy.app.workers import bind_listener, bind_listeners, can_reuse_port
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

    def startTwoWorkers(self) -> int:
        """
        lbproxy with workers = 2 in front of one demo backend, both workers
        running; returns the port.
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
        return port

    def established(self, port: int) -> Set[str]:
        """
        The socket inodes of established TCP connections whose local port
        is C{port} (from /proc/net/tcp).
        """
        inodes = set()
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "01" and int(local.split(":")[1], 16) == port:
                    inodes.add(inode)
        return inodes

    def socketsOf(self, pid: int) -> Set[str]:
        found = set()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                found.add(link[8:-1])
        return found

    def test_connectionsSpread(self) -> None:
        """
        A burst of client connections is spread over both workers (each has
        its own SO_REUSEPORT socket), not taken by whichever woke first.
        """
        if not can_reuse_port():
            raise SkipTest("no SO_REUSEPORT balancing here")
        port = self.startTwoWorkers()
        clients = []
        try:
            for _ in range(40):
                client = socket.create_connection(("127.0.0.1", port), timeout=10)
                clients.append(client)
            for client in clients:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            for client in clients:
                self.assertTrue(client.recv(65536).startswith(b"HTTP/1.1 200 "))
            connections = self.established(port)
            counts = [len(self.socketsOf(pid) & connections) for pid in self.workerPids()]
            self.assertEqual(sum(counts), 40, self.diag())
            # Hashing is random: 40 connections split 50/50 give fewer than
            # 8 to one worker once in about 10,000 runs.
            self.assertGreaterEqual(min(counts), 8, counts)
        finally:
            for client in clients:
                client.close()

    def test_supervised(self) -> None:
        """
        Two workers serve the same port; a killed worker is restarted while
        the other keeps serving; SIGHUP reaches the workers without
        stopping them; SIGTERM stops them all.
        """
        port = self.startTwoWorkers()
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
            lambda: self.proxy.output(tail=None).count("SIGHUP: running access log reopen") >= 2,
            "SIGHUP in both workers",
        )
        self.assertTrue(all(self.alive(pid) for pid in workers), self.diag())
        response = self.curl(port, "/")
        self.assertEqual(response.status, 200)
        self.proxy.stop()
        self.waitFor(lambda: not any(self.alive(pid) for pid in workers), "workers gone", 15)


    def lbproxyWorker(self, pid: int) -> bool:
        """
        Whether C{pid} is still alive and still one of this test's workers
        (not a recycled pid).
        """
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return b"--worker-index" in f.read() and self.alive(pid)
        except OSError:
            return False

    def test_mainKilled(self) -> None:
        """
        SIGKILL to the main process: its workers exit within a few seconds
        instead of serving on as orphans, and the port can be bound again.
        """
        port = self.startTwoWorkers()
        workers = self.workerPids()

        def killLeftovers() -> None:
            # Only the workers this test started, by pid.
            for pid in workers:
                if self.lbproxyWorker(pid):
                    os.kill(pid, signal.SIGKILL)

        self.addCleanup(killLeftovers)
        self.assertEqual(self.curl(port, "/").status, 200, self.diag())
        os.kill(self.proxy.pid, signal.SIGKILL)
        self.proxy.popen.wait(timeout=10)
        self.waitFor(lambda: not any(self.lbproxyWorker(pid) for pid in workers),
                     "workers gone after the main process was killed", 10)
        sock = bind_listener(f"tcp:{port}:interface=127.0.0.1")
        sock.close()


class ReusePortTests(TestCase):
    """
    L{bind_listeners} on 127.0.0.1 (real sockets, no traffic).
    """

    def setUp(self) -> None:
        if not can_reuse_port():
            raise SkipTest("no SO_REUSEPORT balancing here")

    def test_onePerWorker(self) -> None:
        """
        One socket per worker, all on the same port.
        """
        port, = freePorts(1)
        sockets = bind_listeners(f"tcp:{port}:interface=127.0.0.1", 3)
        for sock in sockets:
            self.addCleanup(sock.close)
        self.assertEqual(len(sockets), 3)
        self.assertEqual({sock.getsockname()[1] for sock in sockets}, {port})

    def test_portInUse(self) -> None:
        """
        A port another process holds (even with SO_REUSEPORT itself) is an
        error, not shared.
        """
        holder = bind_listener("tcp:0:interface=127.0.0.1", reusePort=True)
        self.addCleanup(holder.close)
        port = holder.getsockname()[1]
        self.assertRaises(OSError, bind_listeners, f"tcp:{port}:interface=127.0.0.1", 2)

    def test_anyPort(self) -> None:
        """
        Port 0: every worker's socket is on the one port the kernel chose.
        """
        sockets = bind_listeners("tcp:0:interface=127.0.0.1", 3)
        for sock in sockets:
            self.addCleanup(sock.close)
        self.assertEqual(len({sock.getsockname()[1] for sock in sockets}), 1)

    def test_oneWorker(self) -> None:
        """
        One worker: one ordinary socket.
        """
        port, = freePorts(1)
        sockets = bind_listeners(f"tcp:{port}:interface=127.0.0.1", 1)
        self.addCleanup(sockets[0].close)
        self.assertEqual(len(sockets), 1)
        self.assertEqual(
            sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT), 0
        )
