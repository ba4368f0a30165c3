# -*- test-case-name: tests.test_tap -*-
"""
The listening sockets' side of the service: the main process's sockets
for its workers (L{ListeningSockets}), a worker's inherited ones
(L{AdoptedPort}), a worker's end of the health pipe
(L{HealthFeedService}), and the one line a failed bind is reported with
(L{listen_error}).
"""

from __future__ import annotations

import os
from typing import List, Sequence

from twisted.application.service import Service
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.error import CannotListenError
from twisted.protocols.haproxy import proxyEndpoint
from twisted.python.failure import Failure

from lbproxy.app.listening import DEFAULT_BACKLOG
from lbproxy.app.workers import HEALTH_FD, bind_listeners, parse_tcp_listen

__all__ = ["AdoptedPort", "HealthFeedService", "ListeningSockets", "listen_error"]


class ListeningSockets(Service):
    """
    The main process's listening sockets, bound before anything starts (so
    a port in use stops start-up) and passed to every worker.
    """

    def __init__(
        self, descriptions: Sequence[str], workers: int = 1, backlog: int = DEFAULT_BACKLOG
    ) -> None:
        self.descriptions = list(descriptions)
        self.workers = workers
        #: Each socket's listen backlog, unless its description sets one.
        self.backlog = backlog
        #: For each description, its sockets (L{bind_listeners}).
        self.sockets: List[List] = []

    def privilegedStartService(self) -> None:
        Service.privilegedStartService(self)
        for description in self.descriptions:
            try:
                self.sockets.append(bind_listeners(description, self.workers, self.backlog))
            except OSError as e:
                family, interface, port, _ = parse_tcp_listen(description)
                raise CannotListenError(interface, port, e)


class AdoptedPort(Service):
    """
    In a worker: serve C{factory} on a listening socket inherited from the
    main process.
    """

    def __init__(self, reactor, fd: int, description: str, factory, proxyProtocol: bool) -> None:
        # The endpoint adopts the socket (reactor.adoptStreamPort) and then
        # closes C{fd}: the port has its own duplicate of the descriptor.
        endpoint = AdoptedStreamServerEndpoint(reactor, fd, parse_tcp_listen(description)[0])
        self._endpoint = proxyEndpoint(endpoint) if proxyProtocol else endpoint
        self._factory = factory
        self.port = None

    def startService(self) -> None:
        Service.startService(self)
        # Adopting a socket is synchronous: the Deferred has fired already.
        result: list = []
        self._endpoint.listen(self._factory).addBoth(result.append)
        if isinstance(result[0], Failure):
            result[0].raiseException()
        self.port = result[0]

    def stopService(self):
        Service.stopService(self)
        if self.port is not None:
            return self.port.stopListening()


class HealthFeedService(Service):
    """
    In a worker: read the main process's health states from L{HEALTH_FD}.

    The pipe's end while the service runs means the main process is gone:
    the feed's C{parentGone} is called then, not when the reactor closes
    the pipe at shutdown.
    """

    def __init__(self, reactor, feed) -> None:
        self._reactor = reactor
        self._feed = feed
        self._reader = None
        self._parentGone = feed.parentGone
        feed.parentGone = self._ended

    def startService(self) -> None:
        Service.startService(self)
        from twisted.internet import stdio

        self._reader = stdio.StandardIO(
            self._feed, stdin=HEALTH_FD, stdout=os.open(os.devnull, os.O_WRONLY),
            reactor=self._reactor,
        )

    def _ended(self) -> None:
        if self.running:
            self._parentGone()


def listen_error(error: CannotListenError) -> str:
    """
    One line for an operator: which address could not be bound, and why.
    """
    reason = getattr(error.socketError, "strerror", None) or str(error.socketError)
    return "cannot listen on %s:%s: %s" % (error.interface or "*", error.port, reason)
