# -*- test-case-name: tests.test_tls -*-
"""
A service that runs a function in the reactor thread when the process gets
a signal (lbproxy uses SIGHUP to reload its certificates).
"""

from __future__ import annotations

import signal as _signal
from typing import Any, Callable, Optional

from twisted.application.service import Service

__all__ = ["SignalService"]


class SignalService(Service):
    """
    While running, C{signum} calls C{callback} from the reactor loop (never
    inside the signal handler itself).  Stopping restores the previous
    handler.
    """

    def __init__(
        self,
        signum: int,
        callback: Callable[[], Any],
        reactor,
        installer: Optional[Callable[[int, Any], Any]] = None,
    ) -> None:
        """
        @param reactor: Provides C{callFromThread}, used to leave the signal
            handler before C{callback} runs.
        @param installer: Installs a handler and returns the previous one,
            like (and by default) L{signal.signal}.
        """
        self._signum = signum
        self._callback = callback
        self._reactor = reactor
        self._install = installer or _signal.signal
        self._previous: Any = None

    def _handler(self, signum, frame) -> None:
        self._reactor.callFromThread(self._callback)

    def startService(self) -> None:
        Service.startService(self)
        self._previous = self._install(self._signum, self._handler)

    def stopService(self):
        Service.stopService(self)
        previous, self._previous = self._previous, None
        self._install(self._signum, previous if previous is not None else _signal.SIG_DFL)
