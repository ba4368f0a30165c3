# -*- test-case-name: tests.test_reload -*-
"""
The listeners of a single process, as sets a reload can change (one for
C{server.listen}, one for C{tls.listen}, each serving its own factory):
open the ones a new file adds (all, or none), close the ones it removes.

Closing a listener stops accepting; the connections it accepted go on
(a reload drains only what is on removed routes or pools).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, inlineCallbacks, succeed
from twisted.python.failure import Failure

__all__ = ["ListenerFailed", "ListenerSet", "OpenPort", "discard"]


class ListenerFailed(Exception):
    """
    A listener a reload adds cannot be opened.

    @ivar key: the configuration key that names it (C{"server.listen"},
        C{"tls.listen"}).
    """

    def __init__(self, message: str, key: str = "server.listen") -> None:
        Exception.__init__(self, message)
        self.key = key


class OpenPort(Service):
    """
    A listener opened by a reload: already listening when it joins the
    service tree; stopping it stops listening.
    """

    def __init__(self, description: str, port) -> None:
        self.description = description
        self.port = port

    def stopService(self):
        Service.stopService(self)
        port, self.port = self.port, None
        if port is not None:
            return port.stopListening()


class ListenerSet:
    """
    Listeners serving one factory, by endpoint string: those started with
    the service (L{register}) and those a reload opened.
    """

    def __init__(
        self, parent, endpointFor: Callable[[str], object], factory, key: str = "server.listen"
    ) -> None:
        """
        @param parent: the L{MultiService} the listeners' services are in.
        @param endpointFor: the server endpoint of a description (with the
            listen backlog and PROXY protocol settings).
        @param factory: the protocol factory every listener of the set
            serves (the plain site, or the TLS listeners' factory).
        @param key: the configuration key of the set's endpoint strings,
            named when one cannot be opened.
        """
        self._parent = parent
        self._endpointFor = endpointFor
        self.factory = factory
        self.key = key
        self._services: Dict[str, Service] = {}

    def register(self, description: str, service: Service) -> None:
        self._services[description] = service

    def descriptions(self) -> List[str]:
        return list(self._services)

    def services(self) -> List[Service]:
        return list(self._services.values())

    @inlineCallbacks
    def openAll(self, descriptions: Iterable[str]):
        """
        Open every listener of C{descriptions}, or none.

        @return: a L{Deferred} of the L{OpenPort}s (not yet in the service
            tree: see L{adopt}).
        @raise ListenerFailed: (in the L{Deferred}) naming the first one
            that could not be opened, once the others are closed again.
        """
        opened: List[OpenPort] = []
        for description in descriptions:
            try:
                port = yield self._endpointFor(description).listen(self.factory)
            except Exception as e:
                yield discard(opened)
                raise ListenerFailed(
                    f"cannot listen on {description}: {_reason(e)}", self.key
                )
            opened.append(OpenPort(description, port))
        return opened

    def adopt(self, opened: Iterable[OpenPort]) -> None:
        """
        The reload is applied: its new listeners join the service tree.
        """
        for service in opened:
            service.setServiceParent(self._parent)
            self._services[service.description] = service

    def closeExcept(self, keep: Iterable[str]) -> Deferred:
        """
        Stop every listener not in C{keep}.

        @return: a L{Deferred} of the descriptions closed, once they are.
        """
        keep = set(keep)
        closing = []
        closed = []
        for description, service in list(self._services.items()):
            if description in keep:
                continue
            del self._services[description]
            closed.append(description)
            closing.append(_maybeDeferred(service.disownServiceParent))
        return gatherResults(closing).addCallback(lambda _: closed)


def discard(opened: Iterable[OpenPort]) -> Deferred:
    """
    Close listeners opened for a reload that is not applied after all.
    """
    return gatherResults([_maybeDeferred(p.port.stopListening) for p in opened])


def _maybeDeferred(call) -> Deferred:
    try:
        result = call()
    except Exception:
        return fail(Failure())
    if isinstance(result, Deferred):
        return result
    return succeed(result)


def _reason(error: Exception) -> str:
    socketError = getattr(error, "socketError", None)
    if socketError is not None:
        return getattr(socketError, "strerror", None) or str(socketError)
    return str(error) or type(error).__name__
