# -*- test-case-name: tests.test_signals -*-
"""
One service per signal, running a list of named actions in the reactor
loop when the process gets that signal.

lbproxy uses SIGHUP: reopen the access log (after log rotation), reload the
certificates, and, in the main process of C{workers > 1}, pass the signal
on to the workers.  The actions are independent: each runs even when one
before it failed, and a failure is logged under the action's name.
"""

from __future__ import annotations

import signal as _signal
from typing import Any, Callable, List, Optional, Sequence, Tuple

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

__all__ = ["SignalService", "StopSignals", "signal_name"]

log = Logger()

#: An action: a name for logs, and what to call.
Action = Tuple[str, Callable[[], Any]]


def signal_name(signum: int) -> str:
    """
    C{"SIGHUP"} for L{signal.SIGHUP}; the number for an unknown signal.
    """
    try:
        return _signal.Signals(signum).name
    except ValueError:
        return "signal %d" % (signum,)


class SignalService(Service):
    """
    While running, C{signum} runs every action, in the order they were
    added, from the reactor loop (never inside the signal handler itself).
    An action that raises (or returns a L{Deferred} that fails) is logged
    with its name and the traceback; the next one still runs.  Stopping
    restores the previous handler.
    """

    def __init__(
        self,
        signum: int,
        reactor,
        actions: Sequence[Action] = (),
        installer: Optional[Callable[[int, Any], Any]] = None,
    ) -> None:
        """
        @param reactor: Provides C{callFromThread}, used to leave the signal
            handler before the actions run.
        @param actions: C{(name, callable)} pairs; more with L{add}.
        @param installer: Installs a handler and returns the previous one,
            like (and by default) L{signal.signal}.
        """
        self.signum = signum
        self.name = signal_name(signum)
        self._actions: List[Action] = []
        self._reactor = reactor
        self._install = installer or _signal.signal
        self._previous: Any = None
        for name, action in actions:
            self.add(name, action)

    @property
    def actions(self) -> Tuple[Action, ...]:
        """
        The C{(name, callable)} pairs, in the order they run.
        """
        return tuple(self._actions)

    def add(self, name: str, action: Callable[[], Any]) -> None:
        """
        Run C{action} (after those already added) on every signal.

        @param name: What the action does, for logs ("certificate reload").
        """
        self._actions.append((name, action))

    def _handler(self, signum, frame) -> None:
        self._reactor.callFromThread(self.dispatch)

    def dispatch(self) -> None:
        """
        Run every action now, each whatever happened to the others.
        """
        log.info(
            "{signal}: running {actions}",
            signal=self.name,
            actions=", ".join(name for name, _ in self._actions) or "nothing",
        )
        for name, action in self._actions:
            try:
                result = action()
            except Exception:
                log.failure("{signal}: {action} failed", signal=self.name, action=name)
                continue
            if isinstance(result, Deferred):
                result.addErrback(self._failed, name)

    def _failed(self, failure: Failure, name: str) -> None:
        log.failure("{signal}: {action} failed", failure, signal=self.name, action=name)

    def startService(self) -> None:
        Service.startService(self)
        self._previous = self._install(self.signum, self._handler)

    def stopService(self):
        Service.stopService(self)
        previous, self._previous = self._previous, None
        self._install(self.signum, previous if previous is not None else _signal.SIG_DFL)


class StopSignals:
    """
    SIGTERM and SIGINT: the first stops gracefully (C{stop}, the reactor's
    stop, which stops the services: they drain), and the process exits 0
    once done; another, while stopping, cuts what is left (C{abort}).

    Installed once the reactor runs, in place of the reactor's own
    handlers, which would make twistd end by killing itself with the
    signal (status 143), and answer a second signal only by asking again
    for the stop already under way.
    """

    def __init__(
        self,
        reactor,
        stop: Callable[[], Any],
        abort: Callable[[], Any],
        signums: Sequence[int] = (_signal.SIGTERM, _signal.SIGINT),
        installer: Optional[Callable[[int, Any], Any]] = None,
    ) -> None:
        self._reactor = reactor
        self._stop = stop
        self._abort = abort
        self._signums = tuple(signums)
        self._install = installer or _signal.signal
        #: Whether a stop has begun (by a signal or otherwise).
        self.stopping = False

    def install(self) -> None:
        for signum in self._signums:
            self._install(signum, self._handler)

    def _handler(self, signum, frame) -> None:
        self._reactor.callFromThread(self.received, signum)

    def received(self, signum: int) -> None:
        """
        C{signum} arrived (called in the reactor loop).
        """
        if self.stopping:
            log.warn("{signal} again: stopping now", signal=signal_name(signum))
            self._abort()
            return
        self.stopping = True
        log.info("{signal}: stopping gracefully (again to stop at once)",
                 signal=signal_name(signum))
        self._stop()
