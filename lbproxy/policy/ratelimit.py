# -*- test-case-name: tests.test_ratelimit -*-
"""
Per-client rate limiting: a token bucket per key (usually the client
address), in bounded memory.

Pure: no Twisted, no clock of its own; the caller passes the time in.

Each bucket holds up to C{burst} tokens and gains C{rate} tokens a second;
a request takes one token or is refused.  The bucket is stored in its
"virtual scheduling" form (the generic cell rate algorithm, GCRA): one
float per key, the I{theoretical arrival time} C{tat} at which the bucket
would be full again.  With C{T = 1 / rate}, the bucket holds
C{burst - max(0, tat - now) / T} tokens, so:

  - a request at C{now} is allowed when C{max(tat, now) + T - burst * T <=
    now}, and then C{tat} becomes C{max(tat, now) + T};
  - otherwise it is refused, C{tat} stays, and a token is available
    C{max(tat, now) + T - burst * T - now} seconds later;
  - a bucket with C{tat <= now} is full, and forgetting it changes nothing:
    an unknown key starts with a full bucket.

Memory is bounded by C{maxKeys} buckets in least-recently-used order.  On
every call the least recently used bucket is dropped if it is full again,
so buckets of clients that went quiet go away by themselves.  When
C{maxKeys} keys are all active, the least recently used one is evicted even
if its bucket is not full: that client gets a full bucket should it come
back, at most C{burst} requests more than it was owed.  That is the price
of bounded memory against a client that rotates through many source
addresses; the alternative, refusing new keys, would let such a client
lock everybody else out.
"""

from __future__ import annotations

import math
from collections import OrderedDict

__all__ = ["RateLimiter", "retry_after"]

#: Tolerance, in seconds, for floating point error in C{tat}: a request
#: that comes at most this early is allowed (else a client arriving exactly
#: on time could be refused for 1e-17 s and told to retry in 1 s).
_SLACK = 1e-9


def retry_after(delay: float) -> int:
    """
    The C{Retry-After} value for a delay returned by L{RateLimiter.check}.

    @param delay: Seconds until a token is available, > 0.
    @return: Whole seconds, rounded up, at least 1.
    """
    return max(1, math.ceil(delay))


class RateLimiter:
    """
    Token buckets keyed by client.

    @ivar rate: Tokens added per second.
    @ivar burst: Bucket size: requests allowed at once after a quiet spell.
    @ivar maxKeys: The most buckets kept.
    """

    def __init__(self, rate: float, burst: int, maxKeys: int = 100_000) -> None:
        """
        @raise ValueError: Unless C{rate > 0}, C{burst >= 1} and
            C{maxKeys >= 1}.
        """
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number, got {rate!r}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, got {burst!r}")
        if maxKeys < 1:
            raise ValueError(f"maxKeys must be at least 1, got {maxKeys!r}")
        self.rate = float(rate)
        self.burst = int(burst)
        self.maxKeys = int(maxKeys)
        self._interval = 1.0 / self.rate
        # How far tat may run ahead of now for a request to be allowed.
        self._tolerance = (self.burst - 1) * self._interval
        self._tats: "OrderedDict[str, float]" = OrderedDict()

    def __len__(self) -> int:
        """
        The number of buckets held.
        """
        return len(self._tats)

    def __contains__(self, key: str) -> bool:
        return key in self._tats

    def check(self, key: str, now: float) -> float:
        """
        Take a token from C{key}'s bucket if there is one.

        @param key: The client (its address, or whatever the caller limits
            by).
        @param now: The current time in seconds (any monotonic origin).
        @return: C{0.0} when the request is allowed (a token was taken),
            else the seconds until a token is available (see
            L{retry_after}).
        """
        tats = self._tats
        tat = tats.get(key)
        if tat is None:
            # A full bucket: allowed.
            tats[key] = now + self._interval
            if len(tats) > self.maxKeys:
                tats.popitem(last=False)
            else:
                self._forgetOldest(now)
            return 0.0
        tats.move_to_end(key)
        if tat < now:
            tat = now
        wait = tat - now - self._tolerance
        if wait > _SLACK:
            return wait
        tats[key] = tat + self._interval
        self._forgetOldest(now)
        return 0.0

    def _forgetOldest(self, now: float) -> None:
        """
        Drop the least recently used bucket if it is full.
        """
        tats = self._tats
        if len(tats) > 1:
            oldest = next(iter(tats))
            if tats[oldest] <= now:
                del tats[oldest]
