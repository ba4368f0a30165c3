"""
The twistd plugin: options in, a service out.
"""

from __future__ import annotations

import io

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.testing import MemoryReactorClock
from twisted.plugin import getPlugins
from twisted.application.service import IServiceMaker
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.demo import demoSite
from lbproxy.frontend.http import ProxySite
from lbproxy.app.service import ProxyService
from lbproxy.app.tap import Options

GOOD = """
[server]
listen = ["tcp:18080:interface=127.0.0.1", "tcp:18443"]
access_log = false

[pools.mango]
targets = ["127.0.0.1:8081"]

[[routes]]
host = "www.mango.com"
pool = "mango"

[[demo]]
name = "mango"
listen = "tcp:8081:interface=127.0.0.1"
"""



def started_service(testCase, text: str):
    """
    A L{ProxyService} for the configuration C{text}, started on a memory
    reactor.

    @return: C{(service, reactor)}.
    """
    path = testCase.mktemp()
    with open(path, "w") as f:
        f.write(text)
    options = Options()
    options.parseOptions(["--config", path])
    reactor = MemoryReactorClock()
    service = ProxyService(options["loaded"], reactor)
    service.privilegedStartService()
    service.startService()
    return service, reactor

class OptionsTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def parse(self, *args: str):
        out, err = io.StringIO(), io.StringIO()
        options = Options(stdout=out, stderr=err)
        code = None
        try:
            options.parseOptions(list(args))
        except SystemExit as e:
            code = e.code
        return options, code, out.getvalue(), err.getvalue()

    def test_plugin(self):
        """
        twistd finds the lbproxy plugin, pointing at lbproxy.app.tap.
        """
        import twisted.plugins

        makers = {p.tapname: p for p in getPlugins(IServiceMaker, twisted.plugins)}
        self.assertIn("lbproxy", makers)
        self.assertEqual(makers["lbproxy"].module, "lbproxy.app.tap")

    def test_loadsConfig(self):
        """
        --config loads and validates the file while parsing options.
        """
        options, code, _, _ = self.parse("--config", self.write(GOOD))
        self.assertIsNone(code)
        self.assertEqual(list(options["loaded"].pools), ["mango"])

    def test_defaultConfigPath(self):
        """
        Without --config, config.toml in the working directory is read.
        """
        self.assertEqual(Options()["config"], "config.toml")

    def test_check(self):
        """
        --check validates, prints a summary and exits 0.
        """
        path = self.write(GOOD)
        _, code, out, _ = self.parse("--config", path, "--check")
        self.assertEqual(code, 0)
        self.assertIn("configuration OK", out)
        self.assertIn(path, out)

    def test_badConfig(self):
        """
        A bad file exits non-zero with one line naming file, key and reason.
        """
        path = self.write(GOOD.replace('pool = "mango"', 'pool = "banana"'))
        for args in (("--config", path), ("--config", path, "--check")):
            _, code, _, err = self.parse(*args)
            self.assertEqual(code, 2)
            self.assertEqual(err.count("\n"), 1)
            self.assertIn(path + ": routes[0].pool: no pool named", err)

    def test_missingConfig(self):
        """
        A missing file is a configuration error, not a traceback.
        """
        _, code, _, err = self.parse("--config", "/nonexistent/lbproxy.toml")
        self.assertEqual(code, 2)
        self.assertIn("/nonexistent/lbproxy.toml: file not found", err)


class ServiceTests(SynchronousTestCase):
    def test_assembles(self):
        """
        One endpoint service per listen string and per demo backend, serving
        the proxy site and the demo site respectively.
        """
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(GOOD)
        options = Options()
        options.parseOptions(["--config", path])
        service = ProxyService(options["loaded"], MemoryReactorClock())
        endpoints = [s for s in service if isinstance(s, StreamServerEndpointService)]
        self.assertEqual(len(endpoints), 3)
        sites = [type(s.factory) for s in endpoints]
        self.assertEqual(sites.count(ProxySite), 2)
        self.assertIsNone(service.accessLog)

    def test_startListens(self):
        """
        Starting the service listens on every endpoint; stopping closes
        backend connections.
        """
        service, reactor = started_service(self, GOOD)
        ports = sorted(port for port, _, _, _ in reactor.tcpServers)
        self.assertEqual(ports, [8081, 18080, 18443])
        self.successResultOf(service.stopService())


class BacklogTests(SynchronousTestCase):
    """
    Every listener the single process opens gets C{server.listen_backlog}
    (511 unless set), not Twisted's default of 50, unless its endpoint
    string sets its own.
    """

    def listened(self, text: str):
        service, reactor = started_service(self, text)
        self.addCleanup(service.stopService)
        return service, reactor

    def test_default(self):
        """
        Proxy listeners and demo backends listen with a backlog of 511.
        """
        _, reactor = self.listened(GOOD)
        self.assertEqual(
            sorted((port, backlog) for port, _, backlog, _ in reactor.tcpServers),
            [(8081, 511), (18080, 511), (18443, 511)],
        )

    def test_configured(self):
        """
        C{listen_backlog} applies to every listener, PROXY protocol ones
        too; a C{backlog=} in an endpoint string wins.
        """
        service, reactor = self.listened(
            GOOD.replace(
                'access_log = false',
                'access_log = false\nlisten_backlog = 4096\nproxy_protocol = true',
            ).replace('"tcp:18443"', '"tcp:18443:backlog=7"')
        )
        self.assertEqual(
            sorted((port, backlog) for port, _, backlog, _ in reactor.tcpServers),
            [(8081, 4096), (18080, 4096), (18443, 7)],
        )
        descriptions = sorted(
            s.description for s in service if isinstance(s, StreamServerEndpointService)
        )
        self.assertEqual(
            descriptions,
            ["tcp:18080:interface=127.0.0.1", "tcp:18443:backlog=7",
             "tcp:8081:interface=127.0.0.1"],
        )

    def test_unix(self):
        """
        A UNIX socket listener gets the backlog too.
        """
        socketPath = self.mktemp()
        _, reactor = self.listened(
            GOOD.replace('["tcp:18080:interface=127.0.0.1", "tcp:18443"]',
                         '"unix:%s"' % (socketPath,))
        )
        [(address, _, backlog, _, _)] = reactor.unixServers
        self.assertEqual((address, backlog), (socketPath, 511))


class EndWithParentTests(SynchronousTestCase):
    """
    A worker started with C{--parent-pid} ends with its main process.
    """

    def options(self, *extra):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(GOOD)
        options = Options()
        options.parseOptions(["--config", path, *extra])
        return options

    def test_watched(self):
        from lbproxy.app.tap import _endWithParent

        watched = []
        options = self.options("--parent-pid", "4242", "--worker-index", "0")
        _endWithParent(options, watch=lambda pid: watched.append(pid) or True)
        self.assertEqual(watched, [4242])

    def test_parentGone(self):
        """
        The main process died before the worker could ask to end with it:
        the worker exits at once.
        """
        import sys

        from lbproxy.app.tap import _endWithParent

        options = self.options("--parent-pid", "4242", "--worker-index", "0")
        self.patch(sys, "stderr", io.StringIO())
        with self.assertRaises(SystemExit) as caught:
            _endWithParent(options, watch=lambda pid: False)
        self.assertEqual(caught.exception.code, 1)
        self.assertIn("the main process is gone", sys.stderr.getvalue())

    def test_notAWorker(self):
        from lbproxy.app.tap import _endWithParent

        _endWithParent(self.options(), watch=lambda pid: self.fail("watched"))

    def test_workerStopsWhenPipeEnds(self):
        """
        In a worker, the end of the health pipe while running stops the
        reactor; its closing at shutdown does not.
        """
        from twisted.internet.error import ConnectionDone
        from twisted.python.failure import Failure

        from lbproxy.app.service import HealthFeedService

        reactor = MemoryReactorClock()
        service = ProxyService(self.options()["loaded"], reactor, listenFDs=[])
        [feedService] = [s for s in service if isinstance(s, HealthFeedService)]
        feed = feedService._feed
        feedService.running = True
        feed.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(reactor.hasStopped)
        reactor.hasStopped = False
        feedService.running = False
        feed.connectionLost(Failure(ConnectionDone()))
        self.assertFalse(reactor.hasStopped)


class DemoSiteTests(SynchronousTestCase):
    def test_demoSite(self):
        """
        The demo site factory used for [[demo]] entries builds a Site.
        """
        from twisted.web.server import Site

        self.assertIsInstance(demoSite("x", "This is x.", MemoryReactorClock()), Site)


class ListenErrorTests(SynchronousTestCase):
    def test_portInUse(self):
        """
        A port that cannot be bound stops start-up with exit status 1 and one
        line naming the address and the reason.
        """
        import sys

        from twisted.internet.error import CannotListenError

        from lbproxy.app.service import listen_error

        error = CannotListenError("127.0.0.1", 8080, OSError(98, "Address already in use"))
        self.assertEqual(
            listen_error(error), "cannot listen on 127.0.0.1:8080: Address already in use"
        )

        class Refusing(MemoryReactorClock):
            def listenTCP(self, port, factory, backlog=50, interface=""):
                raise CannotListenError(interface, port, OSError(98, "Address already in use"))

        path = self.mktemp()
        with open(path, "w") as f:
            f.write(GOOD)
        options = Options()
        options.parseOptions(["--config", path])
        service = ProxyService(options["loaded"], Refusing())
        err = io.StringIO()
        self.patch(sys, "stderr", err)
        with self.assertRaises(SystemExit) as caught:
            service.privilegedStartService()
        self.assertEqual(caught.exception.code, 1)
        self.assertIn("lbproxy: cannot listen on 127.0.0.1:8081: Address already in use", err.getvalue())


class AdoptedPortTests(SynchronousTestCase):
    """
    In a worker, L{AdoptedPort} serves on a listening socket inherited from
    the main process, through Twisted's public endpoints.
    """

    def adopt(self, proxyProtocol: bool):
        import os
        import socket

        from lbproxy.app.service import AdoptedPort

        sock = socket.socket(socket.AF_INET6)
        self.addCleanup(sock.close)
        fd = os.dup(sock.fileno())
        reactor = MemoryReactorClock()
        factory = object()
        port = AdoptedPort(reactor, fd, r"tcp6:8080:interface=\:\:1", factory, proxyProtocol)
        port.startService()
        self.addCleanup(port.stopService)
        self.assertRaises(OSError, os.fstat, fd)  # closed: the port has its own
        ((fileno, family, adopted),) = [entry[:3] for entry in reactor.adoptedPorts]
        self.assertEqual((fileno, family), (fd, socket.AF_INET6))
        self.assertIsNotNone(port.port)
        return factory, adopted

    def test_plain(self) -> None:
        factory, adopted = self.adopt(False)
        self.assertIs(adopted, factory)

    def test_proxyProtocol(self) -> None:
        """
        With C{proxy_protocol}, the site is wrapped in Twisted's PROXY
        protocol factory.
        """
        factory, adopted = self.adopt(True)
        self.assertEqual(type(adopted).__name__, "HAProxyWrappingFactory")
        self.assertIs(adopted.wrappedFactory, factory)

    def test_failure(self) -> None:
        """
        A socket that cannot be adopted fails C{startService} with the
        reactor's error.
        """
        from lbproxy.app.service import AdoptedPort

        class Refusing(MemoryReactorClock):
            def adoptStreamPort(self, fileDescriptor, addressFamily, factory):
                raise ValueError("not a listening socket")

        import os

        read, write = os.pipe()
        self.addCleanup(os.close, write)
        self.addCleanup(os.close, read)
        port = AdoptedPort(Refusing(), read, "tcp:8080", object(), False)
        self.assertRaises(ValueError, port.startService)
        self.assertIsNone(port.port)
