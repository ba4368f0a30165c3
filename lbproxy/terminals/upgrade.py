# -*- test-case-name: tests.test_upgrade -*-
"""
The terminal of a route, for every request: an ordinary request is
forwarded (L{Forward}); a request to switch protocols (a WebSocket
handshake, C{context.upgrade} set by the C{scan_headers} stage) goes
through an L{UpgradeExchange}, which joins the client and the backend as
a byte relay (L{lbproxy.relay.pipe.Relay}) when the backend answers
C{101 Switching Protocols}.

An upgrade request passes every stage before it, as any other request
(route, pool, access rules, rate limits, header rules); a backend that
refuses the upgrade (any other status) has its answer relayed as usual.
"""

from __future__ import annotations

from twisted.logger import Logger

from lbproxy.pipeline.context import RequestContext
from lbproxy.policy.headers import end_to_end
from lbproxy.relay.pipe import CLIENT, SERVER, Relay
from lbproxy.relay.switch import take_over, take_over_channel
from lbproxy.terminals.forward import Forward
from lbproxy.upstream.exchange import Exchange

__all__ = ["ForwardOrUpgrade", "UpgradeExchange"]

log = Logger()


class UpgradeExchange(Exchange):
    """
    An L{Exchange} for a request that asks to switch protocols: it is
    forwarded with C{Connection: upgrade} (its C{Upgrade} field was kept),
    and a C{101} answer turns both connections into a relay.

    @ivar relay: the L{Relay}, once switched.
    """

    #: Tells the backend connection that a 101 may answer this request.
    upgrading = True
    relay = None

    def __init__(self, context, forward, idleTimeout: float) -> None:
        Exchange.__init__(self, context, forward)
        self._idleTimeout = idleTimeout
        context.headers = list(context.headers) + [(b"Connection", b"upgrade")]

    def responseSwitched(self, conn, reason: bytes, headers, rest: bytes) -> None:
        """
        The backend answered 101: send the client the 101 and relay bytes.
        """
        self._cancelTimer()
        if self.done or self._request.channel is None:
            conn.abort()
            return
        if self._health is not None and self._member is not None:
            self._health.responded(self._member)
        upgrade = [value for name, value in headers if name.lower() == b"upgrade"]
        if not upgrade:
            log.warn("backend {target} answered 101 without Upgrade", target=self.target)
            self._conn = None
            conn.abort()
            self._endAttempt()
            self._localError(502, b"Bad Gateway")
            return
        context = self._context
        context.upstream = self.target
        relayed = end_to_end(headers)
        for hook in context.chain.headHooks:
            relayed = hook(context, relayed)
        parts = [b"HTTP/1.1 101 ", reason or b"Switching Protocols", b"\r\n"]
        for name, value in relayed + [(b"Upgrade", b", ".join(upgrade)), (b"Connection", b"Upgrade")]:
            parts += (name, b": ", value, b"\r\n")
        parts.append(b"\r\n")
        channel = self._request.channel
        client = channel.transport
        client.write(b"".join(parts))
        self._conn = None
        self.status = 101
        self._endAttempt()
        self._finishUpstream()
        # From here the exchange is over (a client going away is the
        # relay's business); the done hooks run when the relay ends.
        self.done = True
        self._leaveQueue()
        relay = self.relay = Relay(self._clock, self._idleTimeout, self._relayEnded)
        ahead = take_over_channel(channel, relay.half(CLIENT))
        take_over(conn, relay.half(SERVER))
        relay.join(client, conn.transport, ahead, rest)

    def _relayEnded(self, relay: Relay) -> None:
        log.info(
            "upgraded connection to {target} ({protocol}) ended after {duration:.3f}s: "
            "{up} bytes up, {down} bytes down ({reason})",
            target=self.target,
            protocol=self._context.upgrade.decode("latin-1"),
            duration=relay.duration,
            up=relay.up,
            down=relay.down,
            reason=relay.reason,
        )
        context = self._context
        context.status = 101
        context.sent = relay.down
        context.upstream = self.target
        context.upstreamTime = self.upstreamTime
        context.chain.finish(context)


class ForwardOrUpgrade(Forward):
    """
    A route's terminal: L{Forward} for ordinary requests, an
    L{UpgradeExchange} for requests to switch protocols.

    @ivar idleTimeout: C{websocket_idle_timeout}.
    """

    def __init__(
        self,
        pool,
        services,
        responseTimeout: float,
        requestBuffering: int = 0,
        idleTimeout: float = 3600.0,
    ) -> None:
        Forward.__init__(self, pool, services, responseTimeout, requestBuffering)
        self.idleTimeout = idleTimeout

    def __call__(self, context: RequestContext) -> None:
        if context.upgrade is None:
            Forward.__call__(self, context)
            return
        context.pool = self.pool.name
        UpgradeExchange(context, self, self.idleTimeout).start()
