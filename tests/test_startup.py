"""
Tests for start-up as an operator sees it: L{lbproxy.app.startup} (the
start-up line, the failure path in the foreground and as a daemon, the
problems found before start-up, worker numbers on event lines) and
L{lbproxy.app.notify} (systemd readiness).
"""

from __future__ import annotations

import io
import os
import socket
import stat

from twisted.internet.error import CannotListenError
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import LogLevel, LogPublisher
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.notify import notify_socket, sd_notify
from lbproxy.app.service import ProxyService
from lbproxy.app.startup import StartupReport, config_problems, startup_line, tag_events
from lbproxy.app.tap import Options
from lbproxy.config import parse_config

CONFIG = {
    "server": {"listen": ["tcp:18080:interface=127.0.0.1"], "access_log": False},
    "pools": {"a": {"targets": ["127.0.0.1:9001"]}, "b": {"targets": ["127.0.0.1:9002"]}},
    "routes": [{"path": "/a", "pool": "a"}, {"path": "/b", "pool": "b"}, {"pool": "a"}],
}


def config(**server):
    settings = dict(CONFIG, server=dict(CONFIG["server"], **server))
    return parse_config(settings, "lb.toml")


class StartupLineTests(SynchronousTestCase):
    def test_line(self):
        """
        One line: version, listeners, pools and routes counted.
        """
        self.assertEqual(
            startup_line(config()),
            "lbproxy 0.1.0 started: 1 listener (tcp:18080:interface=127.0.0.1), 2 pools, "
            "3 routes",
        )

    def test_workers(self):
        line = startup_line(config(listen=["tcp:1", "tcp:2"], workers=4), "main")
        self.assertIn("2 listeners (tcp:1, tcp:2)", line)
        self.assertTrue(line.endswith(", 4 workers"))


class ProblemTests(SynchronousTestCase):
    """
    An access log start-up could not open is found before start-up (and by
    C{--check}).
    """

    def test_writable(self):
        path = os.path.join(self.mktemp())
        self.assertEqual(config_problems(config(access_log=path)), [])
        self.assertEqual(config_problems(config(access_log="-")), [])

    def test_missingDirectory(self):
        [problem] = config_problems(config(access_log="/nonexistent/dir/access.log"))
        self.assertEqual(
            problem,
            "server.access_log: /nonexistent/dir/access.log: directory /nonexistent/dir "
            "does not exist",
        )

    def test_directory(self):
        path = self.mktemp()
        os.mkdir(path)
        [problem] = config_problems(config(access_log=path))
        self.assertTrue(problem.endswith("is a directory"))

    def test_notWritable(self):
        if os.getuid() == 0:
            # root may write anything: the file check proves nothing then;
            # make the directory a file's parent that is not a directory.
            path = self.mktemp()
            open(path, "w").close()
            [problem] = config_problems(config(access_log=os.path.join(path, "x.log")))
            self.assertIn("does not exist", problem)
            return
        path = self.mktemp()
        open(path, "w").close()
        os.chmod(path, stat.S_IRUSR)
        [problem] = config_problems(config(access_log=path))
        self.assertTrue(problem.endswith("not writable"))

    def test_checkFindsIt(self):
        """
        C{twistd lbproxy --check} (and C{lbproxy check}) fail with one line,
        exit status 2.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write('[server]\naccess_log = "/nonexistent/a.log"\n'
                    '[pools.a]\ntargets = ["127.0.0.1:9"]\n[[routes]]\npool = "a"\n')
        out, err = io.StringIO(), io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            Options(stdout=out, stderr=err).parseOptions(["--check", "--config", path])
        self.assertEqual(caught.exception.code, 2)
        self.assertEqual(out.getvalue(), "")
        self.assertEqual(
            err.getvalue(),
            "lbproxy: configuration error: %s: server.access_log: /nonexistent/a.log: "
            "directory /nonexistent does not exist\n" % (path,),
        )


class FailureTests(SynchronousTestCase):
    """
    A failed start-up ends with one line and exit status 1, as a daemon too.
    """

    def test_foreground(self):
        err = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            StartupReport(None, stderr=err).fail("cannot listen on *:80: Permission denied")
        self.assertEqual(caught.exception.code, 1)
        self.assertEqual(err.getvalue(), "lbproxy: cannot listen on *:80: Permission denied\n")

    def test_daemon(self):
        """
        As a daemon, the line goes to the pipe the launching twistd reads
        (which then prints it and exits 1, instead of waiting forever),
        and the pipe is closed.
        """
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        twistd = {"statusPipe": write, "nodaemon": False}
        with self.assertRaises(SystemExit) as caught:
            StartupReport(twistd, daemon=True).fail(
                "cannot listen on 127.0.0.1:8080: Address already in use"
            )
        self.assertEqual(caught.exception.code, 1)
        self.assertEqual(
            os.read(read, 200), b"1 cannot listen on 127.0.0.1:8080: Address already in use"
        )
        self.assertEqual(os.read(read, 10), b"")  # closed: end of file
        self.assertIsNone(twistd["statusPipe"])

    def test_pidfileRemoved(self):
        """
        The pid file twistd wrote is removed (it is only when start-up
        raises an Exception), in the foreground too.
        """
        pidfile = self.mktemp()
        with open(pidfile, "w") as f:
            f.write("123")
        with self.assertRaises(SystemExit):
            StartupReport({"pidfile": pidfile}, stderr=io.StringIO()).fail("no")
        self.assertFalse(os.path.exists(pidfile))

    def test_daemonService(self):
        """
        A port in use while starting as a daemon: the service writes the
        pipe and exits 1 (a SystemExit passes twistd's own pipe writing).
        """

        class Refusing(MemoryReactorClock):
            def listenTCP(self, port, factory, backlog=50, interface=""):
                raise CannotListenError(interface, port, OSError(98, "Address already in use"))

        read, write = os.pipe()
        self.addCleanup(os.close, read)
        service = ProxyService(
            config(), Refusing(), daemon=True,
            report=StartupReport({"statusPipe": write}, daemon=True),
        )
        with self.assertRaises(SystemExit):
            service.privilegedStartService()
        self.assertEqual(
            os.read(read, 200), b"1 cannot listen on 127.0.0.1:18080: Address already in use"
        )

    def test_accessLogGone(self):
        """
        An access log that cannot be opened by the time the service is
        built (after the options' check): one line, exit 1.
        """
        err = io.StringIO()
        with self.assertRaises(SystemExit) as caught:
            ProxyService(config(access_log="/nonexistent/a.log"), MemoryReactorClock(),
                         report=StartupReport(None, stderr=err))
        self.assertEqual(caught.exception.code, 1)
        self.assertEqual(
            err.getvalue(),
            "lbproxy: cannot open the access log /nonexistent/a.log: No such file or directory\n",
        )

    def test_longMessage(self):
        """
        twistd reads 100 bytes at most: the message is cut to fit.
        """
        read, write = os.pipe()
        self.addCleanup(os.close, read)
        with self.assertRaises(SystemExit):
            StartupReport({"statusPipe": write}, daemon=True).fail("x" * 500)
        self.assertEqual(len(os.read(read, 200)), 100)


class NotifyTests(SynchronousTestCase):
    """
    systemd readiness, against a socket the test listens on.
    """

    def listen(self, abstract=False):
        server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(server.close)
        if abstract:
            name = "lbproxy-test-%d" % (os.getpid(),)
            server.bind("\0" + name)
            return server, "@" + name
        path = os.path.abspath(self.mktemp())
        server.bind(path)
        return server, path

    def test_path(self):
        server, path = self.listen()
        self.assertTrue(sd_notify("READY=1", {"NOTIFY_SOCKET": path}))
        self.assertEqual(server.recv(100), b"READY=1")

    def test_abstract(self):
        server, name = self.listen(abstract=True)
        self.assertTrue(sd_notify("READY=1", {"NOTIFY_SOCKET": name}))
        self.assertEqual(server.recv(100), b"READY=1")

    def test_notSet(self):
        self.assertFalse(sd_notify("READY=1", {}))
        self.assertIsNone(notify_socket({"NOTIFY_SOCKET": "relative"}))

    def test_gone(self):
        """
        A socket that is not there: nothing sent, no exception.
        """
        self.assertFalse(sd_notify("READY=1", {"NOTIFY_SOCKET": "/nonexistent/notify"}))

    def test_readyOnceBound(self):
        """
        The service says READY=1 (with the start-up line as its status)
        once its listeners are bound, not before.
        """
        server, path = self.listen()
        server.setblocking(False)
        reactor = MemoryReactorClock()
        service = ProxyService(config(), reactor, environ={"NOTIFY_SOCKET": path})
        service.privilegedStartService()
        self.assertEqual(len(reactor.tcpServers), 1)
        self.assertRaises(BlockingIOError, server.recv, 100)
        service.startService()
        self.addCleanup(service.stopService)
        self.assertEqual(
            server.recv(200).decode(),
            "READY=1\nSTATUS=" + startup_line(config()),
        )


class TagTests(SynchronousTestCase):
    def test_workerNumber(self):
        """
        Event lines of a worker carry its number.
        """
        publisher = LogPublisher()
        seen = []
        tag_events("worker 2", publisher)
        publisher.addObserver(seen.append)
        publisher({"log_namespace": "lbproxy.health.checker", "log_level": LogLevel.info})
        publisher({"log_system": "stderr"})
        self.assertEqual(
            [e["log_system"] for e in seen],
            ["worker 2 lbproxy.health.checker#info", "worker 2 stderr"],
        )
