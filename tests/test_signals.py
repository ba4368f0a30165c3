"""
The signal service: its handler, its independent named actions, and the
SIGHUP actions of the running proxy.
"""

from __future__ import annotations

import signal
from typing import Any, Callable, Dict, List

from twisted.internet.defer import Deferred, fail
from twisted.internet.testing import MemoryReactorClock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.service import ProxyService
from lbproxy.app.signals import SignalService, signal_name
from lbproxy.config import parse_config


class Installer:
    """
    Stands for L{signal.signal}: remembers the handlers.
    """

    def __init__(self) -> None:
        self.handlers: Dict[int, Any] = {signal.SIGHUP: "previous"}

    def __call__(self, signum: int, handler: Any) -> Any:
        previous = self.handlers.get(signum)
        self.handlers[signum] = handler
        return previous


class QueueingReactor:
    """
    Keeps what C{callFromThread} is given, to run it later.
    """

    def __init__(self) -> None:
        self.calls: List[Callable[[], Any]] = []

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        self.calls.append(lambda: f(*args))

    def runCalls(self) -> None:
        calls, self.calls = self.calls, []
        for call in calls:
            call()


class LogCapture:
    """
    The events logged by L{lbproxy.app.signals}, while a test runs.
    """

    def __init__(self, case: SynchronousTestCase) -> None:
        self.events: List[dict] = []
        globalLogPublisher.addObserver(self._observe)
        case.addCleanup(globalLogPublisher.removeObserver, self._observe)

    def _observe(self, event: dict) -> None:
        if event.get("log_namespace") == "lbproxy.app.signals":
            self.events.append(event)

    def failures(self) -> List[dict]:
        return [e for e in self.events if "log_failure" in e]

    def messages(self) -> List[str]:
        return [formatEvent(e) for e in self.events]


class SignalServiceTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.install = Installer()
        self.reactor = QueueingReactor()
        self.ran: List[str] = []
        self.log = LogCapture(self)

    def service(self, *actions) -> SignalService:
        return SignalService(
            signal.SIGHUP, self.reactor, actions, installer=self.install
        )

    def record(self, name: str) -> Callable[[], None]:
        return lambda: self.ran.append(name)

    def test_installsAndRestores(self) -> None:
        """
        Running, the signal handler only schedules the actions through
        the reactor; they run from the reactor loop.  Stopped, the
        previous handler is back.
        """
        service = self.service(("one", self.record("one")))
        service.startService()
        self.install.handlers[signal.SIGHUP](signal.SIGHUP, None)
        self.assertEqual(self.ran, [])
        self.assertEqual(len(self.reactor.calls), 1)
        self.reactor.runCalls()
        self.assertEqual(self.ran, ["one"])
        service.stopService()
        self.assertEqual(self.install.handlers[signal.SIGHUP], "previous")

    def test_noPreviousHandler(self) -> None:
        """
        Without a previous Python handler, stopping installs the default.
        """
        del self.install.handlers[signal.SIGHUP]
        service = self.service()
        service.startService()
        service.stopService()
        self.assertEqual(self.install.handlers[signal.SIGHUP], signal.SIG_DFL)

    def test_actionsInOrder(self) -> None:
        """
        Actions given to the constructor, then those added, run in order
        on every signal; the log says which run.
        """
        service = self.service(("access log reopen", self.record("a")))
        service.add("certificate reload", self.record("b"))
        self.assertEqual([name for name, _ in service.actions],
                         ["access log reopen", "certificate reload"])
        service.dispatch()
        service.dispatch()
        self.assertEqual(self.ran, ["a", "b", "a", "b"])
        self.assertEqual(self.log.messages()[0],
                         "SIGHUP: running access log reopen, certificate reload")

    def test_failureDoesNotStopTheOthers(self) -> None:
        """
        A failing action is logged, with its name and the exception, and
        the next action still runs.
        """

        def reopen() -> None:
            raise OSError("disk full")

        service = self.service(
            ("access log reopen", reopen), ("certificate reload", self.record("reload"))
        )
        self.install.handlers.clear()
        service.startService()
        self.install.handlers[signal.SIGHUP](signal.SIGHUP, None)
        self.reactor.runCalls()
        self.assertEqual(self.ran, ["reload"])
        failures = self.log.failures()
        self.assertEqual(len(failures), 1)
        self.assertEqual(formatEvent(failures[0]), "SIGHUP: access log reopen failed")
        self.assertIsInstance(failures[0]["log_failure"].value, OSError)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_everyFailureLogged(self) -> None:
        """
        Every failing action is logged on its own.
        """

        def broken() -> None:
            raise ZeroDivisionError()

        service = self.service(("first", broken), ("second", broken),
                               ("third", self.record("third")))
        service.dispatch()
        self.assertEqual(self.ran, ["third"])
        self.assertEqual([formatEvent(e) for e in self.log.failures()],
                         ["SIGHUP: first failed", "SIGHUP: second failed"])
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 2)

    def test_failedDeferred(self) -> None:
        """
        An action returning a L{Deferred} that fails is logged the same
        way, whenever it fails.
        """
        later: Deferred = Deferred()
        service = self.service(
            ("now", lambda: fail(ValueError("bad now"))),
            ("later", lambda: later),
            ("last", self.record("last")),
        )
        service.dispatch()
        self.assertEqual(self.ran, ["last"])
        self.assertEqual([formatEvent(e) for e in self.log.failures()], ["SIGHUP: now failed"])
        later.errback(KeyError("bad later"))
        self.assertEqual([formatEvent(e) for e in self.log.failures()],
                         ["SIGHUP: now failed", "SIGHUP: later failed"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError, KeyError)), 2)

    def test_signalName(self) -> None:
        self.assertEqual(signal_name(signal.SIGHUP), "SIGHUP")
        self.assertEqual(signal_name(signal.SIGUSR1), "SIGUSR1")
        self.assertEqual(signal_name(0), "signal 0")


class ProxySIGHUPTests(SynchronousTestCase):
    """
    The proxy's SIGHUP actions.
    """

    def proxy(self, **server) -> ProxyService:
        server.setdefault("listen", "tcp:0:interface=127.0.0.1")
        config = parse_config(
            {"server": server, "pools": {"p": {"targets": ["127.0.0.1:1"]}}}, "lb.toml"
        )
        return ProxyService(config, MemoryReactorClock(), spawn=lambda *a, **k: None)

    def test_actions(self) -> None:
        """
        One SIGHUP service: the access log is reopened, then the
        certificates reloaded.
        """
        service = self.proxy(access_log=self.mktemp())
        self.addCleanup(service.accessLog.close)
        signals = [s for s in service if isinstance(s, SignalService)]
        self.assertEqual(signals, [service.sighup])
        self.assertEqual(service.sighup.signum, signal.SIGHUP)
        self.assertEqual([name for name, _ in service.sighup.actions],
                         ["configuration reload", "access log reopen", "certificate reload"])

    def test_failedReopenStillReloads(self) -> None:
        """
        When reopening the access log fails, the failure is logged and the
        certificates are reloaded all the same.
        """
        log = LogCapture(self)
        service = self.proxy(access_log=self.mktemp())
        self.addCleanup(service.accessLog.close)
        reloads = []

        def reopen() -> None:
            raise PermissionError("no access")

        service.accessLog.reopen = reopen
        service.tls.reloader.reload = lambda: reloads.append(True)
        service.sighup.dispatch()
        self.assertEqual(reloads, [True])
        self.assertEqual([formatEvent(e) for e in log.failures()],
                         ["SIGHUP: access log reopen failed"])
        self.assertEqual(len(self.flushLoggedErrors(PermissionError)), 1)

    def test_mainProcessForwards(self) -> None:
        """
        The main process of C{workers > 1} passes SIGHUP on to its workers.
        """
        service = self.proxy(workers=2)
        self.assertEqual(
            [name for name, _ in service.sighup.actions],
            ["configuration reload", "forward to workers"],
        )
        forwarded = []
        service.supervisor.signalWorkers = forwarded.append
        service.sighup.dispatch()
        self.assertEqual(forwarded, ["HUP"])


class StopSignalsTests(SynchronousTestCase):
    """
    L{lbproxy.app.signals.StopSignals}: the first SIGTERM or SIGINT stops
    gracefully, another one stops at once.
    """

    def test_firstThenSecond(self) -> None:
        from lbproxy.app.signals import StopSignals

        calls = []
        installed = {}
        reactor = MemoryReactorClock()
        stops = StopSignals(reactor, lambda: calls.append("stop"), lambda: calls.append("abort"),
                            installer=lambda signum, handler: installed.__setitem__(signum, handler))
        stops.install()
        self.assertEqual(sorted(installed), sorted([signal.SIGTERM, signal.SIGINT]))
        stops.received(signal.SIGTERM)
        self.assertEqual(calls, ["stop"])
        stops.received(signal.SIGINT)
        self.assertEqual(calls, ["stop", "abort"])

    def test_stoppingOtherwise(self) -> None:
        """
        A stop that did not come from a signal (the main process went
        away): a signal then stops at once.
        """
        from lbproxy.app.signals import StopSignals

        calls = []
        stops = StopSignals(MemoryReactorClock(), lambda: calls.append("stop"),
                            lambda: calls.append("abort"), installer=lambda s, h: None)
        stops.stopping = True
        stops.received(signal.SIGTERM)
        self.assertEqual(calls, ["abort"])
