# -*- test-case-name: tests.test_balancing -*-
"""
The wait queue of a pool with C{max_inflight}: requests that found every
member full wait here, oldest first, for one to have room, each for at
most the queue's timeout.

No reactor of its own: the clock is the caller's.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Dict, Protocol

__all__ = ["WaitQueue", "Waiter"]


class Waiter(Protocol):
    """
    A request waiting in a L{WaitQueue} (an
    L{lbproxy.upstream.exchange.Exchange}).

    @ivar done: whether it has ended anyway (it is then skipped).
    """

    done: bool

    def resume(self) -> None:
        """
        A member has room: try again.  The waiter has left the queue.
        """

    def queueTimedOut(self) -> None:
        """
        It waited for the queue's whole timeout.  It has left the queue.
        """


class WaitQueue:
    """
    @ivar size: most waiters; L{add} refuses more.
    @ivar timeout: seconds a waiter waits at most.
    @ivar waiters: the waiters, oldest first (read only: change it through
        the methods).
    """

    def __init__(self, size: int = 100, timeout: float = 10.0) -> None:
        self.size = size
        self.timeout = timeout
        self.waiters: Deque[Waiter] = deque()
        self._timers: Dict[Waiter, object] = {}

    def __len__(self) -> int:
        return len(self.waiters)

    def __repr__(self) -> str:
        return f"<WaitQueue {len(self.waiters)}/{self.size} timeout={self.timeout:g}>"

    def add(self, waiter: Waiter, clock) -> bool:
        """
        Queue C{waiter}, until L{wakeNext} resumes it or C{timeout} seconds
        on C{clock} (an L{IReactorTime}) have passed.

        @return: L{False} if the queue is full (C{waiter} was not added).
        """
        if len(self.waiters) >= self.size:
            return False
        self.waiters.append(waiter)
        self._timers[waiter] = clock.callLater(self.timeout, self._queueTimedOut, waiter)
        return True

    def remove(self, waiter: Waiter) -> None:
        """
        C{waiter} leaves the queue (e.g. its client went away); nothing if
        it is not in it.
        """
        timer = self._timers.pop(waiter, None)
        if timer is None:
            return
        if timer.active():
            timer.cancel()
        try:
            self.waiters.remove(waiter)
        except ValueError:
            pass

    def wakeNext(self) -> None:
        """
        A member has room: resume the oldest waiter not yet done.
        """
        waiters = self.waiters
        while waiters:
            waiter = waiters.popleft()
            timer = self._timers.pop(waiter, None)
            if timer is not None and timer.active():
                timer.cancel()
            if not waiter.done:
                waiter.resume()
                return

    def _queueTimedOut(self, waiter: Waiter) -> None:
        self._timers.pop(waiter, None)
        try:
            self.waiters.remove(waiter)
        except ValueError:
            pass
        waiter.queueTimedOut()
