# -*- test-case-name: tests.test_healthcheck -*-
"""
One probe: the client probes go through, what makes a response healthy,
and short reasons for failures.
"""

from __future__ import annotations

from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.error import TimeoutError
from twisted.internet.protocol import Factory, Protocol

__all__ = [
    "PROBE_BODY_LIMIT",
    "check_response",
    "connect_probe",
    "describe_failure",
    "probe_client",
]

#: Most bytes of a probe's response body read (and thrown away).
PROBE_BODY_LIMIT = 64 * 1024


def describe_failure(reason) -> str:
    """
    A short reason for a log line: C{"connection refused"}, C{"timed out"}
    (the prober adds how long), C{"status 500"}.
    """
    value = reason.value
    # Agent wraps what went wrong (e.g. the cancellation of a request that
    # timed out) in ResponseNeverReceived and similar, with a list.
    inner = getattr(value, "reasons", None)
    if inner:
        value = inner[0].value
    if isinstance(value, (TimeoutError, defer.TimeoutError, defer.CancelledError)):
        return "timed out"
    name = type(value).__name__
    text = str(value).strip()
    if name == "ConnectionRefusedError":
        return "connection refused"
    if "DNS lookup failed" in text:
        return "DNS lookup failed"
    return text.rstrip(".") or name


def probe_client(reactor, tlsPolicy=None):
    """
    The treq client probes go through: a fresh connection per probe (a
    probe checks that the target accepts connections, so none is reused).

    @param tlsPolicy: an L{IPolicyForHTTPS} for C{https://} targets (the
        pools' CA, client certificate and C{verify}, from
        L{lbproxy.tls.edge.TLSEdge.probePolicy}), or L{None} for Twisted's
        default (the system's trust store).
    """
    from treq.client import HTTPClient
    # Twisted private names: _HTTP11ClientFactory and the pool's _factory
    # attribute are the only way to make the agent's per-connection factory
    # quiet (not two "Starting/Stopping factory" log lines per probe). A
    # Twisted release that renames them makes start-up fail here, which
    # every end-to-end test would show.
    from twisted.web.client import Agent, HTTPConnectionPool, _HTTP11ClientFactory

    class QuietFactory(_HTTP11ClientFactory):
        noisy = False

    pool = HTTPConnectionPool(reactor, persistent=False)
    pool._factory = QuietFactory
    if tlsPolicy is None:
        return HTTPClient(Agent(reactor, pool=pool))
    return HTTPClient(Agent(reactor, contextFactory=tlsPolicy, pool=pool))


class _BadStatus(Exception):
    pass


def check_response(response, settings) -> defer.Deferred:
    """
    Read (and drop) a bounded body so the connection is released; fail
    with C{"status N"} unless C{settings} (a L{lbproxy.config.HealthConfig})
    count the status as healthy.
    """
    code = response.code
    d = _drain(response)
    if not settings.healthy(code):
        d.addCallback(lambda _: _fail(f"status {code}"))
    return d


def _fail(message: str):
    raise _BadStatus(message)


class _Discard:
    """
    Reads a response body up to L{PROBE_BODY_LIMIT} and drops it.
    """

    def __init__(self, done: defer.Deferred) -> None:
        self._done = done
        self._seen = 0
        self.transport = None

    def makeConnection(self, transport) -> None:
        self.transport = transport

    def dataReceived(self, data: bytes) -> None:
        self._seen += len(data)
        if self._seen > PROBE_BODY_LIMIT and self.transport is not None:
            self.transport.stopProducing()

    def connectionLost(self, reason) -> None:
        if not self._done.called:
            self._done.callback(None)


def _drain(response) -> defer.Deferred:
    """
    Read and drop a response body; cancelling (a probe timing out while the
    body trickles in) closes the connection.
    """
    protocol = None

    def cancel(d):
        if protocol is not None and protocol.transport is not None:
            protocol.transport.stopProducing()

    done: defer.Deferred = defer.Deferred(cancel)
    protocol = _Discard(done)
    response.deliverBody(protocol)
    return done


class _Hangup(Protocol):
    def connectionMade(self) -> None:
        self.transport.loseConnection()


def connect_probe(reactor, target, timeout: float) -> defer.Deferred:
    """
    A TCP connect check: fires when a connection to C{target} is open (and
    closes it at once), fails if it is refused or takes longer than
    C{timeout} (the caller's C{addTimeout} cancels it).
    """
    if ":" in target.host:
        endpoint = TCP6ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    elif target.host.replace(".", "").isdigit():
        endpoint = TCP4ClientEndpoint(reactor, target.host, target.port, timeout=timeout)
    else:
        endpoint = HostnameEndpoint(reactor, target.host.encode("ascii"), target.port,
                                    timeout=timeout)
    return endpoint.connect(Factory.forProtocol(_Hangup))
