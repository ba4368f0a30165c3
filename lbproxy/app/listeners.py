# -*- test-case-name: tests.test_reload -*-
"""
The plain listeners of a single process, as a set a reload can change:
open the ones a new file adds (all, or none), close the ones it removes.

Closing a listener stops accepting; the connections it accepted go on
(a reload drains only what is on removed routes or pools).
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, gatherResults, inlineCallbacks, succeed
from twisted.python.failure import Failure

__all__ = ["ListenerFailed", "ListenerSet", "OpenPort"]


class ListenerFailed(Exception):
    """
    A listener a reload adds cannot be opened.
    """


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
    The plain listeners, by endpoint string: those started with the
    service (L{register}) and those a reload opened.
    """

    def __init__(self, parent, endpointFor: Callable[[str], object], factory) -> None:
        """
        @param parent: the L{MultiService} the listeners' services are in.
        @param endpointFor: the server endpoint of a description (with the
            listen backlog and PROXY protocol settings).
        @param factory: the protocol factory every plain listener serves.
        """
        self._parent = parent
        self._endpointFor = endpointFor
        self.factory = factory
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
                yield gatherResults([_maybeDeferred(p.port.stopListening) for p in opened])
                raise ListenerFailed(f"cannot listen on {description}: {_reason(e)}")
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
