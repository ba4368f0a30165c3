# -*- test-case-name: tests.test_drain -*-
"""
Client connections, followed while they are open, so that a reload can
drain the ones on routes and pools it removed and a shutdown can finish
the requests in flight before the process exits.

The rule is one and general: B{a connection whose work is on a route and
pool that still exist is untouched}.  A connection says what it is busy
with as I{keys}: for each piece of work in progress, the configured
L{lbproxy.config.Route} and the name of its pool.  An HTTP/1.x channel's
keys are its requests' routes (set by the routing terminal as
C{request.lbRoute}, the L{lbproxy.runtime.chains.CompiledRoute}), and an
HTTP/2 connection's those of its open streams' requests; any
other long-lived connection (a WebSocket or TCP relay) joins by being
passed to L{LiveConnections.opened} and offering C{drainKeys()},
C{closeWhenIdle()} and C{abortNow()} (see L{channel_keys} for the
fallback used for channels).

  - After a reload, the work on routes or pools the new runtime does not
    have may go on for C{drain_timeout} seconds; what is still running
    then is closed (L{LiveConnections.drainRemoved}).
  - At shutdown, idle connections are closed at once, busy ones once
    their work is done, and whatever still runs after C{drain_timeout}
    is closed (L{LiveConnections.shutdown}).

A request cut this way is logged with status 503 (through the channel's
C{rejected} mark), not as a client that went away (499).
"""

from __future__ import annotations

from typing import Any, Iterable, List, Set, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

__all__ = ["CUT_STATUS", "LiveConnections", "channel_keys", "route_exists"]

log = Logger()

#: The status logged for a request the proxy cut (drain timeout).
CUT_STATUS = 503
#: How often a shutdown looks for connections that became idle.
SWEEP_INTERVAL = 0.2

Key = Tuple[Any, str]


def route_exists(key: Key, runtime) -> bool:
    """
    Whether the route and pool of C{key} are in C{runtime}: a route equal
    to it (the same configured settings) and a pool of that name.
    """
    route, pool = key
    if route is None:
        # Not routed (yet, or at all): answered by lbproxy itself.
        return True
    if pool not in runtime.pools:
        return False
    return route == runtime.defaultRoute or route in runtime.config.routes


def _requests(conn) -> List[Any]:
    """
    The requests in progress on a channel: an HTTP/1.x channel's
    C{requests}, or the requests of an HTTP/2 connection's open streams.
    """
    streams = getattr(conn, "streams", None)
    if streams is not None:
        # (Twisted's H2Stream keeps its request as _request.)
        return [s._request for s in streams.values() if getattr(s, "_request", None)]
    return list(getattr(conn, "requests", None) or ())


def channel_keys(conn) -> List[Key]:
    """
    What C{conn} is busy with: its own C{drainKeys()} if it has one, else
    (an HTTP/1.x channel) the route and pool of each request in progress;
    a request not routed (yet, or at all) counts as C{(None, "")}.
    """
    own = getattr(conn, "drainKeys", None)
    if own is not None:
        return list(own())
    keys: List[Key] = []
    for request in _requests(conn):
        compiled = getattr(request, "lbRoute", None)
        if compiled is None:
            keys.append((None, ""))
        else:
            keys.append((compiled.route, compiled.pool.name))
    return keys


def _cut(conn) -> None:
    """
    Close C{conn} now, its requests logged as cut by the proxy.
    """
    own = getattr(conn, "abortNow", None)
    if own is not None:
        own()
        return
    for request in _requests(conn):
        if getattr(request, "rejected", None) is None:
            request.rejected = CUT_STATUS
    transport = getattr(conn, "transport", None)
    if transport is not None:
        transport.abortConnection()


def _closeWhenIdle(conn) -> bool:
    """
    Make C{conn}'s current work its last: close it now if idle.

    @return: whether it was idle (and is closing).
    """
    own = getattr(conn, "closeWhenIdle", None)
    if own is not None:
        return bool(own())
    requests = _requests(conn)
    conn.persistent = False
    if not requests:
        transport = getattr(conn, "transport", None)
        if transport is not None:
            transport.loseConnection()
        return True
    if getattr(conn, "streams", None) is None:
        # HTTP/1.x (HTTP/2 has no Connection header: the connection just
        # closes once its streams are done).
        for request in requests:
            if not getattr(request, "startedWriting", True):
                request.responseHeaders.setRawHeaders(b"Connection", [b"close"])
    return False


class LiveConnections:
    """
    The client connections open now.

    @ivar clock: the reactor's clock.
    @ivar stopping: whether a shutdown has begun.
    """

    def __init__(self, clock) -> None:
        self.clock = clock
        self.stopping = False
        self._open: Set[Any] = set()
        self._waiters: List[Deferred] = []
        self._sweep = None
        self._deadline = None

    def __len__(self) -> int:
        return len(self._open)

    def __iter__(self):
        return iter(list(self._open))

    def opened(self, conn) -> None:
        """
        C{conn} is open (called by the channel, or by a relay).
        """
        if self.stopping:
            # Accepted just before the listeners closed: serve what it
            # sends, then close.
            conn.persistent = False
        self._open.add(conn)

    def closed(self, conn) -> None:
        self._open.discard(conn)
        if self._waiters and not self._open:
            self._finish()

    def busy(self) -> int:
        """
        Requests (or other work) in progress over all connections.
        """
        return sum(len(channel_keys(conn)) for conn in self._open)

    # -- reload ----------------------------------------------------------------

    def drainRemoved(self, runtime, timeout: float) -> int:
        """
        After C{runtime} was swapped in: connections busy on a route or
        pool it does not have get C{timeout} seconds to finish, then are
        closed.  The others are not touched.

        @return: how many connections are draining.
        """
        doomed = [
            conn for conn in self._open
            if any(not route_exists(key, runtime) for key in channel_keys(conn))
        ]
        if doomed:
            self.clock.callLater(timeout, self._cutRemoved, doomed, runtime, timeout)
        return len(doomed)

    def _cutRemoved(self, doomed, runtime, timeout: float) -> None:
        cut = 0
        for conn in doomed:
            if conn not in self._open:
                continue
            if any(not route_exists(key, runtime) for key in channel_keys(conn)):
                _cut(conn)
                cut += 1
        if cut:
            log.warn(
                "reload: closed {count} connection(s) still busy on removed routes or "
                "pools after drain_timeout ({timeout:g}s)",
                count=cut, timeout=timeout,
            )

    # -- shutdown ---------------------------------------------------------------

    def shutdown(self, timeout: float) -> Deferred:
        """
        Close idle connections now and busy ones once idle; after
        C{timeout} seconds close the rest.  The listeners must already be
        closed.

        @return: a L{Deferred} that fires when every connection is closed.
        """
        if not self.stopping:
            self.stopping = True
            if self._open:
                log.info(
                    "shutting down: {busy} request(s) in flight on {count} connection(s); "
                    "waiting up to {timeout:g}s",
                    busy=self.busy(), count=len(self._open), timeout=timeout,
                )
                self._deadline = self.clock.callLater(timeout, self.abortAll, "drain_timeout")
        if not self._open:
            self._finish()
            return succeed(None)
        waiter: Deferred = Deferred()
        self._waiters.append(waiter)
        if self._sweep is None:
            self._sweepOnce()
        return waiter

    def _sweepOnce(self) -> None:
        self._sweep = None
        for conn in list(self._open):
            _closeWhenIdle(conn)
        if self._open and self._waiters:
            self._sweep = self.clock.callLater(SWEEP_INTERVAL, self._sweepOnce)

    def abortAll(self, why: str = "second signal") -> None:
        """
        Close every connection now (the drain time is up, or the operator
        asked again).
        """
        busy = [conn for conn in self._open if channel_keys(conn)]
        if busy:
            log.warn(
                "shutting down: {why}: cutting {count} connection(s) with requests in "
                "flight (logged as {status})",
                why=why, count=len(busy), status=CUT_STATUS,
            )
        for conn in list(self._open):
            _cut(conn)
        # Whatever did not report its close (a transport that ignores an
        # abort) does not hold the exit up.
        self._open.clear()
        self._finish()

    def _finish(self) -> None:
        for name in ("_sweep", "_deadline"):
            call = getattr(self, name)
            setattr(self, name, None)
            if call is not None and call.active():
                call.cancel()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)


def keys_of(conns: Iterable[Any]) -> List[Key]:
    """
    Every key of C{conns} (for tests and the status).
    """
    return [key for conn in conns for key in channel_keys(conn)]
