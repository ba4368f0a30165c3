# -*- test-case-name: tests.test_upgrade -*-
"""
Taking a connection away from the protocol that has it (an HTTP/1.1
channel after a 101, a backend connection after its 101) and handing its
bytes to one side of a relay.

The protocol object stays the transport's protocol; its C{dataReceived}
and C{connectionLost} are replaced on the instance (the transport looks
them up on every call), as Twisted's own WebSocket support does with
C{HTTPChannel}, so the same works for plain and TLS connections.  The old
protocol's C{connectionLost} still runs after the relay's, so its own
clean-up (connection counts, pools) happens as before.
"""

from __future__ import annotations

__all__ = ["take_over", "take_over_channel"]


def take_over(protocol, half) -> None:
    """
    Send C{protocol}'s bytes and its end to C{half} (a
    L{lbproxy.relay.pipe.RelayHalf}).
    """
    original = protocol.connectionLost

    def connectionLost(reason=None):
        half.connectionLost(reason)
        original(reason)

    protocol.dataReceived = half.dataReceived
    protocol.connectionLost = connectionLost


def take_over_channel(channel, half) -> bytes:
    """
    Take a client's HTTP/1.1 connection (a
    L{lbproxy.frontend.http.ProxyChannel}) from its channel once its
    request was answered with a 101: its timers stop, it stops being its
    transport's producer, and reading goes on for the relay.

    @return: the bytes the channel read after the request and kept for
        later (the new protocol's first bytes, if the client sent any
        before the 101).
    """
    # GuardedChannel's header/body/idle timers and request deadline, and
    # HTTPChannel's buffer of what came after the request being handled
    # (_dataBuffer, a private name of Twisted's; tests.test_upgrade sends
    # bytes before the 101 to prove they are not lost).
    channel._cancelTimers()
    ahead = b"".join(channel._dataBuffer)
    channel._dataBuffer = []
    take_over(channel, half)
    transport = channel.transport
    transport.unregisterProducer()
    # The channel may have paused reading (pipelined bytes while the
    # request was handled).
    transport.resumeProducing()
    return ahead
