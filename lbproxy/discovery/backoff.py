# -*- test-case-name: tests.test_feed -*-
"""
Capped exponential back-off with jitter, for reconnecting to etcd and to a
deployment agent's feed.

Pure: the random source is passed in.
"""

from __future__ import annotations

import random as _random
from typing import Callable

__all__ = ["Backoff"]


class Backoff:
    """
    Delays of C{initial}, then twice the last, up to C{cap}; each is
    jittered down by up to C{jitter} of itself (so a fleet that lost its
    agent at once does not come back at once), never above the schedule.

    @ivar attempts: failures since the last L{reset}.
    """

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 30.0,
        jitter: float = 0.2,
        random: Callable[[], float] = _random.random,
    ) -> None:
        self.initial = initial
        self.cap = cap
        self.jitter = jitter
        self._random = random
        self.attempts = 0

    def base(self, attempt: int) -> float:
        """
        The schedule's delay before retry number C{attempt} (0-based),
        without jitter.
        """
        return min(self.cap, self.initial * (2 ** min(attempt, 64)))

    def next(self) -> float:
        """
        The delay before the next attempt (counts one more failure).
        """
        base = self.base(self.attempts)
        self.attempts += 1
        return base * (1.0 - self.jitter * self._random())

    def reset(self) -> None:
        """
        A connection succeeded: start the schedule over.
        """
        self.attempts = 0
