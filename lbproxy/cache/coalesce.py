# -*- test-case-name: tests.test_cache_coalesce -*-
"""
Request coalescing: concurrent misses for one key make one backend
request (the leader's); the others wait for it.  Pure bookkeeping: what a
waiter does when told is the caller's business.

A waiter provides:

  - C{landed()}: the leader's response was stored: look it up again;
  - C{released()}: the response cannot answer you (uncacheable, too
    large, another variant): go to the backend yourself, now;
  - C{takeOver(flight)}: the leader failed; you lead this flight now.
"""

from __future__ import annotations

from typing import Dict, List, Optional

__all__ = ["Coalescer", "Flight"]


class Flight:
    """
    One backend request in progress for a key, and who waits for it.

    @ivar key: the primary key.
    @ivar leader: whoever fetches (a request's state or a background
        fetch).
    @ivar waiters: those waiting, oldest first.
    @ivar open: whether it is still in progress.
    """

    __slots__ = ("key", "leader", "waiters", "open", "outcome", "entry")

    def __init__(self, key: bytes, leader) -> None:
        self.key = key
        #: What the waiters' answers are labelled when it landed (C{"HIT"}
        #: if L{None}; C{"REVALIDATED"} after a 304, C{"STALE"} when a
        #: failed revalidation falls back on a stale entry).
        self.outcome = None
        #: The stored response it landed with (only a waiter whose lookup
        #: finds this one is answered without the freshness rules: another
        #: variant is judged as usual).
        self.entry = None
        self.leader = leader
        self.waiters: List = []
        self.open = True

    def __repr__(self) -> str:
        return f"<Flight {self.key!r} waiters={len(self.waiters)}>"


class Coalescer:
    """
    The flights in progress, by key.

    @ivar coalesced: requests that waited for another's fetch, since start.
    """

    def __init__(self) -> None:
        self._flights: Dict[bytes, Flight] = {}
        self.coalesced = 0

    def __len__(self) -> int:
        return len(self._flights)

    def find(self, key: bytes) -> Optional[Flight]:
        return self._flights.get(key)

    def lead(self, key: bytes, leader) -> Optional[Flight]:
        """
        Start a flight for C{key} led by C{leader}, or L{None} if one is
        already in progress (then L{wait} on L{find}'s).
        """
        if key in self._flights:
            return None
        flight = self._flights[key] = Flight(key, leader)
        return flight

    def wait(self, flight: Flight, waiter, coalesced: bool = True) -> None:
        """
        C{waiter} waits for C{flight} (C{coalesced}: for another request's
        fetch, not the cache's own revalidation it asked for).
        """
        flight.waiters.append(waiter)
        if coalesced:
            self.coalesced += 1

    def leave(self, flight: Flight, waiter) -> None:
        """
        A waiter's client went away: it waits no more.
        """
        try:
            flight.waiters.remove(waiter)
        except ValueError:
            pass

    def _close(self, flight: Flight) -> List:
        if flight.open:
            flight.open = False
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]
        waiters, flight.waiters = flight.waiters, []
        return waiters

    def landed(self, flight: Flight) -> None:
        """
        The leader's response is stored: every waiter looks again.
        """
        for waiter in self._close(flight):
            waiter.landed()

    def release(self, flight: Flight) -> None:
        """
        The leader's response cannot be shared: every waiter goes to the
        backend at once.
        """
        for waiter in self._close(flight):
            waiter.released()

    def failed(self, flight: Flight) -> None:
        """
        The leader's fetch failed: the oldest waiter leads the flight now
        and the others go on waiting; without waiters the flight ends.
        """
        if not flight.open:
            return
        if not flight.waiters:
            self._close(flight)
            return
        leader = flight.waiters.pop(0)
        flight.leader = leader
        leader.takeOver(flight)
