"""
The worker supervisor and the health feed, in memory: a fake spawnProcess,
a Clock, fake process transports.
"""

from __future__ import annotations

import socket

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import HealthConfig, Target
from lbproxy.runtime.pools import build_pool
from lbproxy.config import Pool as PoolConfig
from lbproxy.runtime.targets import TargetRegistry
from lbproxy.app.parent import PR_SET_PDEATHSIG, watch_parent
from lbproxy.app.workers import (
    FIRST_LISTEN_FD,
    HEALTH_FD,
    bind_listeners,
    READY_FD,
    HealthFeed,
    WorkerSupervisor,
    parse_tcp_listen,
    state_line,
    worker_count,
)


class FakeProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.signals = []
        self.written = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)

    def writeToChild(self, fd: int, data: bytes) -> None:
        self.written.append((fd, data))

    def closeChildFD(self, fd: int) -> None:
        self.written.append((fd, None))


class FakeSpawner:
    def __init__(self) -> None:
        self.calls = []
        self.nextPid = 100

    def __call__(self, protocol, executable, args, env=None, childFDs=None):
        self.nextPid += 1
        process = FakeProcess(self.nextPid)
        self.calls.append((protocol, executable, args, childFDs, process))
        protocol.makeConnection(process)
        return process


class SupervisorTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.spawn = FakeSpawner()
        self.sockets = []
        for _ in range(2):
            sock = socket.socket()
            self.addCleanup(sock.close)
            self.sockets.append(sock)
        # Two addresses: the first with one socket per worker, the second
        # with one socket shared by both.
        self.supervisor = WorkerSupervisor(
            2, ["python", "-c", "run"], [self.sockets, [self.sockets[0]]], self.clock,
            self.spawn, env={},
            snapshot=lambda: [b"state\n"],
            getpid=lambda: 4242,
        )
        self.supervisor.startService()

    def end(self, index: int, reason=None) -> None:
        worker = self.supervisor.workers[index]
        worker.processEnded(Failure(reason or ProcessTerminated(exitCode=1)))

    def test_starts(self):
        """
        N workers, each given the listening sockets from fd 4 on, a health
        pipe on fd 3, and the current health states first.
        """
        self.assertEqual(len(self.spawn.calls), 2)
        protocol, executable, args, childFDs, process = self.spawn.calls[0]
        self.assertEqual(executable, "python")
        self.assertEqual(
            args[-6:],
            ["--parent-pid", "4242", "--listen-fds", "5,6", "--worker-index", "0"],
        )
        self.assertEqual(childFDs[FIRST_LISTEN_FD], self.sockets[0].fileno())
        self.assertEqual(childFDs[FIRST_LISTEN_FD + 1], self.sockets[0].fileno())
        self.assertEqual(childFDs[HEALTH_FD], "w")
        self.assertEqual(process.written, [(HEALTH_FD, b"state\n")])

    def test_socketPerWorker(self):
        """
        Where an address has a socket per worker, worker i gets the i-th;
        a shared socket goes to every worker.
        """
        childFDs = self.spawn.calls[1][3]
        self.assertEqual(childFDs[FIRST_LISTEN_FD], self.sockets[1].fileno())
        self.assertEqual(childFDs[FIRST_LISTEN_FD + 1], self.sockets[0].fileno())
        self.end(1)
        self.clock.advance(60)
        self.assertEqual(self.spawn.calls[-1][2][-1], "1")
        self.assertEqual(self.spawn.calls[-1][3][FIRST_LISTEN_FD], self.sockets[1].fileno())

    def test_restartAfterCrash(self):
        """
        A worker that dies is restarted, after a back-off that grows while
        it keeps dying quickly and is gone once it ran long enough.
        """
        self.end(0)
        self.assertEqual(len(self.spawn.calls), 2)
        self.clock.advance(1)
        self.assertEqual(len(self.spawn.calls), 3)
        self.assertEqual(self.spawn.calls[-1][2][-1], "0")
        self.end(0)
        self.clock.advance(1)
        self.assertEqual(len(self.spawn.calls), 3)
        self.clock.advance(1)
        self.assertEqual(len(self.spawn.calls), 4)
        self.clock.advance(60)
        self.end(0)
        self.clock.advance(0)
        self.assertEqual(len(self.spawn.calls), 5)
        self.assertEqual(self.supervisor.restarts, 3)

    def test_forwardSignal(self):
        """
        A signal for the workers reaches every one of them, once it says it
        is ready (its handlers in place).
        """
        self.spawn.calls[0][0].childDataReceived(READY_FD, b"ready\n")
        self.supervisor.signalWorkers("HUP")
        self.assertEqual([call[4].signals for call in self.spawn.calls], [["HUP"], []])
        self.spawn.calls[1][0].childDataReceived(READY_FD, b"ready\n")
        self.assertEqual([call[4].signals for call in self.spawn.calls], [["HUP"], ["HUP"]])

    def test_broadcast(self):
        self.supervisor.broadcast(b"x\n")
        for call in self.spawn.calls:
            self.assertIn((HEALTH_FD, b"x\n"), call[4].written)

    def test_stop(self):
        """
        Stopping sends TERM, then KILL to those still running after the
        grace period; nothing is restarted; it is done when all ended.
        """
        d = self.supervisor.stopService()
        self.assertEqual([call[4].signals for call in self.spawn.calls], [["TERM"], ["TERM"]])
        self.end(0, ProcessDone(0))
        self.assertNoResult(d)
        self.clock.advance(10)
        self.assertEqual(self.spawn.calls[1][4].signals, ["TERM", "KILL"])
        self.end(1)
        self.successResultOf(d)
        self.clock.advance(60)
        self.assertEqual(len(self.spawn.calls), 2)


class HealthFeedTests(SynchronousTestCase):
    def setUp(self):
        self.registry = TargetRegistry(probing=False)
        self.pool = build_pool(
            "web",
            PoolConfig("web", (Target("http", "10.0.0.1", 80), Target("http", "10.0.0.2", 80))),
            self.registry,
        )
        self.feed = HealthFeed(self.registry)

    def test_applies(self):
        """
        The main process's states take a worker's member out and back; the
        worker's own passive ejection still counts.
        """
        pool, feed = self.pool, self.feed
        first = pool.members[0].state
        feed.dataReceived(state_line(first.ident, False)[:10])
        self.assertTrue(pool.members[0].up)
        feed.dataReceived(state_line(first.ident, False)[10:] + b"garbage\n")
        self.assertFalse(pool.members[0].up)
        self.assertTrue(pool.members[1].up)
        feed.dataReceived(state_line(first.ident, True))
        self.assertTrue(pool.members[0].up)
        for _ in range(HealthConfig().passive_fail):
            first.health.connectionFailed(1.0, "connection refused")
        first.up = first.health.available
        feed.dataReceived(state_line(first.ident, True))
        self.assertFalse(pool.members[0].up)

    def test_line(self):
        """
        A state line is one JSON object naming the target's registry entry
        by its ident (its URL and a digest of the rest of its identity).
        """
        import json

        ident = self.pool.members[0].state.ident
        self.assertRegex(ident, r"^http://10\.0\.0\.1:80#[0-9a-f]{12}$")
        line = state_line(ident, False)
        self.assertTrue(line.endswith(b"\n"))
        self.assertEqual(json.loads(line), {"target": ident, "up": False})

    def test_followsRegistry(self):
        """
        The feed finds entries in the registry as it is now: one added by a
        newer runtime is found, a retired one is not.
        """
        old = self.pool.members[0].state
        newer = build_pool(
            "web", PoolConfig("web", (Target("http", "10.0.0.3", 80),)), self.registry
        )
        self.registry.retain([("web", newer.members[0].state)])
        self.feed.dataReceived(state_line(old.ident, False))
        self.assertTrue(old.up)
        self.feed.dataReceived(state_line(newer.members[0].state.ident, False))
        self.assertFalse(newer.members[0].up)

    def test_parentGone(self):
        """
        The end of the pipe means the main process is gone: the feed says
        so, once.
        """
        from twisted.internet.error import ConnectionDone

        gone = []
        feed = HealthFeed(self.registry, parentGone=lambda: gone.append(True))
        feed.dataReceived(state_line(self.pool.members[0].state.ident, False))
        self.assertEqual(gone, [])
        feed.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(gone, [True])

    def test_ignored(self):
        """
        Lines for unknown targets, or that are not state lines, change
        nothing.
        """
        self.feed.dataReceived(
            state_line("http://10.0.0.9:80#000000000000", False)
            + b'{"pool": "web", "address": "10.0.0.1:80", "up": false}\n'
            + b"[1, 2]\n"
            + b'{"target": ["x"], "up": false}\n'
        )
        self.assertEqual([m.up for m in self.pool.members], [True, True])


class ParsingTests(SynchronousTestCase):
    def test_tcp(self):
        self.assertEqual(
            parse_tcp_listen("tcp:8080:interface=127.0.0.1"),
            (socket.AF_INET, "127.0.0.1", 8080, None),
        )
        self.assertEqual(parse_tcp_listen("tcp:port=80")[1:3], ("0.0.0.0", 80))
        self.assertEqual(parse_tcp_listen("tcp:80:interface=\\:\\:1")[0], socket.AF_INET6)
        self.assertRaises(ValueError, parse_tcp_listen, "unix:/tmp/s")

    def test_backlog(self):
        """
        The backlog of a C{tcp:} string, or L{None} when it sets none.
        """
        self.assertEqual(parse_tcp_listen("tcp:80:backlog=7")[3], 7)
        self.assertIsNone(parse_tcp_listen("tcp:80")[3])

    def test_count(self):
        self.assertEqual(worker_count(3), 3)
        self.assertGreaterEqual(worker_count("auto"), 1)


class _RecordingSocket(socket.socket):
    """
    A real socket that remembers the backlog it listened with.
    """

    backlogs: list = []

    def listen(self, backlog):
        _RecordingSocket.backlogs.append(backlog)
        socket.socket.listen(self, backlog)


class BindBacklogTests(SynchronousTestCase):
    """
    The sockets the main process binds for its workers listen with
    C{server.listen_backlog} unless the endpoint string sets one.
    """

    def bound(self, description, count, **kwargs):
        _RecordingSocket.backlogs = []
        sockets = bind_listeners(description, count, socketFactory=_RecordingSocket, **kwargs)
        for sock in sockets:
            self.addCleanup(sock.close)
        return _RecordingSocket.backlogs

    def test_default(self):
        self.assertEqual(set(self.bound("tcp:0:interface=127.0.0.1", 2)), {511})

    def test_configured(self):
        self.assertEqual(
            self.bound("tcp:0:interface=127.0.0.1", 1, backlog=4096), [4096]
        )

    def test_described(self):
        """
        A C{backlog=} in the endpoint string wins, small or large.
        """
        self.assertEqual(
            self.bound("tcp:0:interface=127.0.0.1:backlog=7", 1, backlog=4096), [7]
        )


class WatchParentTests(SynchronousTestCase):
    """
    L{watch_parent}: on Linux, SIGTERM when the parent dies, and whether the
    parent is still the one that started the worker.
    """

    def setUp(self):
        self.calls = []

    def prctl(self, *args):
        self.calls.append(args)
        return 0

    def test_linux(self):
        """
        On Linux the parent-death signal is SIGTERM, asked for before the
        parent is checked.
        """
        import signal

        order = []
        self.assertTrue(
            watch_parent(
                4242,
                prctl=lambda *args: order.append(("prctl", args)) or 0,
                getppid=lambda: order.append(("getppid",)) or 4242,
                platform="linux",
            )
        )
        self.assertEqual(
            order, [("prctl", (PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)), ("getppid",)]
        )

    def test_parentDiedBefore(self):
        """
        The parent died before the prctl: this process was re-parented (to
        1, or a subreaper), and the worker must exit.
        """
        self.assertFalse(watch_parent(4242, prctl=self.prctl, getppid=lambda: 1,
                                      platform="linux"))
        self.assertFalse(watch_parent(4242, prctl=self.prctl, getppid=lambda: 77,
                                      platform="linux"))

    def test_elsewhere(self):
        """
        Elsewhere no prctl; the parent is still checked.
        """
        self.assertTrue(watch_parent(4242, prctl=self.prctl, getppid=lambda: 4242,
                                     platform="darwin"))
        self.assertFalse(watch_parent(4242, prctl=self.prctl, getppid=lambda: 1,
                                      platform="darwin"))
        self.assertEqual(self.calls, [])

    def test_prctlFails(self):
        """
        A failing prctl is logged; the health pipe still ends the worker.
        """
        self.assertTrue(watch_parent(4242, prctl=lambda *args: -1, getppid=lambda: 4242,
                                     platform="linux"))
        self.assertEqual(len(self.flushLoggedErrors()), 0)

    def test_realPrctl(self):
        """
        The C library's prctl accepts the request (on Linux), in a child
        process so that this one is unchanged.
        """
        import os
        import sys

        if not sys.platform.startswith("linux"):
            from twisted.trial.unittest import SkipTest

            raise SkipTest("Linux only")
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                import ctypes
                import ctypes.util
                import signal

                code = 0 if watch_parent(os.getppid()) else 2
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                value = ctypes.c_int(0)
                libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
                if value.value != signal.SIGTERM:
                    code = 3
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(status), 0)


class ConfigPipeTests(SynchronousTestCase):
    """
    A worker reads the configuration its main process serves from a pipe,
    not from the file.
    """

    def test_supervisorSends(self):
        spawn = FakeSpawner()
        sock = socket.socket()
        self.addCleanup(sock.close)
        texts = ["first"]
        supervisor = WorkerSupervisor(
            1, ["python"], [[sock]], Clock(), spawn, env={}, getpid=lambda: 1,
            configText=lambda: texts[-1],
        )
        supervisor.startService()
        protocol, executable, args, childFDs, process = spawn.calls[0]
        configFD = FIRST_LISTEN_FD + 1
        self.assertEqual(args[1:3], ["--config-fd", str(configFD)])
        self.assertEqual(childFDs[configFD], "w")
        self.assertEqual(process.written[:2], [(configFD, b"first"), (configFD, None)])
        # A worker started later gets the text in service then.
        texts.append("second")
        supervisor.workers[0].processEnded(Failure(ProcessTerminated(exitCode=1)))
        supervisor._clock.advance(60)
        self.assertEqual(spawn.calls[-1][4].written[0], (configFD, b"second"))
        supervisor._stopping = True

    def test_optionsRead(self):
        """
        C{--config-fd}: the text is read from the descriptor to its end and
        parsed with the file's name (relative names resolve against it).
        """
        import os

        from lbproxy.app.tap import Options

        read, write = os.pipe()
        os.write(write, b'[pools.p]\ntargets = ["127.0.0.1:1"]\n')
        os.close(write)
        options = Options()
        options.parseOptions(["--config", "/nonexistent/lb.toml", "--config-fd", str(read)])
        self.assertEqual(options["loaded"].path, "/nonexistent/lb.toml")
        self.assertEqual(list(options["loaded"].pools), ["p"])

