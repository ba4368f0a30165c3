# -*- test-case-name: tests.test_http2_guard -*-
"""
Repeat offenders: client addresses whose HTTP/2 connection was closed for
going over a bound (L{lbproxy.frontend.h2guard}) have their next
connections refused for a while.

A bound per connection alone holds a client that reconnects after each
C{GOAWAY} back only by the cost of its TLS handshakes: a "reconnecting"
rapid reset or control-frame flood goes on at the rate of new connections,
and other clients' latency rises.  L{RepeatOffenders} refuses new
connections from such an address for C{penalty} seconds after each
offence, doubling with each offence within L{MEMORY} seconds, up to
L{LONGEST}.  Clients sharing the address (behind one NAT) share the
refusal; C{[server.http2] penalty = 0} turns it off.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Tuple

__all__ = ["LONGEST", "MEMORY", "RepeatOffenders"]

#: The longest refusal, in seconds.
LONGEST = 300.0
#: How long an offence is remembered (for doubling), in seconds.
MEMORY = 600.0
#: The most addresses remembered; the least recently offending go first.
MAX_ADDRESSES = 10000


class RepeatOffenders:
    """
    Addresses refused for a while after an offence.

    @ivar refused: How many connections were refused.
    """

    def __init__(self, clock, penalty: float, maxAddresses: int = MAX_ADDRESSES) -> None:
        """
        @param clock: an L{IReactorTime}.
        @param penalty: the first refusal, in seconds; 0 refuses nothing.
        @param maxAddresses: the most addresses remembered.
        """
        self._clock = clock
        self._penalty = penalty
        self._max = maxAddresses
        # address -> (refused until, offences, last offence)
        self._offenders: "OrderedDict[str, Tuple[float, int, float]]" = OrderedDict()
        self.refused = 0

    def offended(self, address: str) -> float:
        """
        C{address} went over a bound.

        @return: the seconds its new connections are now refused for.
        """
        if self._penalty <= 0:
            return 0.0
        now = self._clock.seconds()
        entry = self._offenders.pop(address, None)
        offences = 1
        if entry is not None and now - entry[2] < MEMORY:
            offences = entry[1] + 1
        seconds = min(self._penalty * 2 ** min(offences - 1, 30), LONGEST)
        self._offenders[address] = (now + seconds, offences, now)
        while len(self._offenders) > self._max:
            self._offenders.popitem(last=False)
        return seconds

    def refuses(self, address: str) -> bool:
        """
        Whether a new connection from C{address} is refused now (and
        counts it if so).
        """
        if not self._offenders:
            return False
        entry = self._offenders.get(address)
        if entry is None:
            return False
        now = self._clock.seconds()
        if now < entry[0]:
            self.refused += 1
            return True
        if now - entry[2] >= MEMORY:
            del self._offenders[address]
        return False
