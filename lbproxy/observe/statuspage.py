# -*- test-case-name: tests.test_statuspage -*-
"""
The live status page on the admin listener: C{GET /} is one HTML page
(L{lbproxy.observe.statushtml}: no build step, no external assets), and
C{GET /events} a server-sent event stream that sends it a frame every
second.

A frame is the admin API's status (L{lbproxy.admin.status.status_snapshot}:
listeners, routes, the configuration's checksum and load time, each pool's
targets with weight, effective weight, in flight, last change and reason)
with, per target, what the L{StatusSampler} derives from the counters of
its registry entry: the operator's state name (L{target_state}), requests
per second, error rate, p50/p99 upstream latency over the last minute,
and a sparkline of requests and errors per second over the last three
minutes.
"""

from __future__ import annotations

import json
import weakref
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from lbproxy.admin.status import status_snapshot
from lbproxy.observe.counters import quantile
from lbproxy.observe.readaccess import refuse_unless_readable
from lbproxy.observe.states import target_state
from lbproxy.observe.statushtml import render_page

__all__ = ["StatusEvents", "StatusPage", "StatusSampler", "events_page", "status_page"]

log = Logger()

#: Seconds between frames.
INTERVAL = 1.0
#: Samples kept per target: the sparkline's length (three minutes).
HISTORY = 180
#: Samples the latency quantiles and the error rate look back over.
WINDOW = 60
#: Samples the request rate looks back over.
RATE_WINDOW = 5

Sample = Tuple[float, int, int, Tuple[int, ...]]


class StatusSampler:
    """
    Samples every target's counters once a second and makes the frames.

    @ivar subscribers: the requests of the open event streams.
    """

    def __init__(self, core, clock) -> None:
        """
        @param core: the L{lbproxy.app.wiring.ProxyCore}.
        @param clock: its reactor.
        """
        self.core = self._core = core
        self._clock = clock
        self._history: Dict[str, Deque[Sample]] = {}
        self.subscribers: Set[Any] = set()
        self._loop: Optional[LoopingCall] = None

    def start(self) -> None:
        """
        Sample every second from now on (the first page or stream asked
        for starts it; it then runs as long as the process).
        """
        if self._loop is None:
            self._loop = LoopingCall(self.tick)
            self._loop.clock = self._clock
            self._loop.start(INTERVAL, now=True).addErrback(
                lambda f: log.failure("status page sampling failed", f)
            )

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    def tick(self) -> None:
        """
        Take a sample, and send the new frame to every open stream.
        """
        self.sample()
        if self.subscribers:
            data = self.event()
            for request in list(self.subscribers):
                try:
                    request.write(data)
                except Exception:
                    # A stream that cannot take more: forget it, keep the
                    # others (and the sampling) going.
                    self.subscribers.discard(request)
                    log.failure("status page stream write failed")

    def sample(self) -> None:
        now = self._clock.seconds()
        seen = set()
        for entry in self._core.registry.entries():
            counters = entry.counters
            history = self._history.get(entry.ident)
            if history is None:
                history = self._history[entry.ident] = deque(maxlen=HISTORY + 1)
            history.append(
                (now, counters.requests, counters.errors, tuple(counters.latency.counts))
            )
            seen.add(entry.ident)
        for ident in set(self._history) - seen:
            del self._history[ident]

    def frame(self) -> Dict[str, Any]:
        """
        The page's data now: the admin status with each target's rates,
        latencies, state and sparkline.
        """
        now = self._clock.seconds()
        snapshot = status_snapshot(self._core, now)
        registry = self._core.registry
        for pool in snapshot["pools"].values():
            for target in pool["targets"]:
                entry = registry.find(target["ident"])
                if entry is None:
                    continue
                target["state"] = target_state(entry, now)
                target.update(self._rates(self._history.get(entry.ident), entry))
        return snapshot

    def _rates(self, history: Optional[Deque[Sample]], entry) -> Dict[str, Any]:
        counters = entry.counters
        samples: List[Sample] = list(history or ())
        if not samples:
            samples = [(self._clock.seconds(), counters.requests, counters.errors,
                        tuple(counters.latency.counts))]
        last = samples[-1]
        rate = samples[max(0, len(samples) - 1 - RATE_WINDOW)]
        window = samples[max(0, len(samples) - 1 - WINDOW)]
        elapsed = last[0] - rate[0]
        requests = last[1] - window[1]
        latency = [a - b for a, b in zip(last[3], window[3])]
        p50 = quantile(latency, 0.5)
        p99 = quantile(latency, 0.99)
        return {
            "rps": round((last[1] - rate[1]) / elapsed, 2) if elapsed > 0 else 0.0,
            "error_rate": round((last[2] - window[2]) / requests, 4) if requests else 0.0,
            "p50_ms": round(p50 * 1000, 1) if p50 is not None else None,
            "p99_ms": round(p99 * 1000, 1) if p99 is not None else None,
            "spark_requests": [b[1] - a[1] for a, b in zip(samples, samples[1:])],
            "spark_errors": [b[2] - a[2] for a, b in zip(samples, samples[1:])],
        }

    def event(self) -> bytes:
        """
        One server-sent event carrying the current frame.
        """
        return b"data: " + json.dumps(self.frame(), separators=(",", ":")).encode() + b"\n\n"

    def subscribe(self, request) -> None:
        self.subscribers.add(request)
        request.notifyFinish().addBoth(lambda _: self.subscribers.discard(request))


class StatusPage(Resource):
    """
    C{GET /}: the page, with the current frame in it (drawn at once,
    before its event stream has sent anything).
    """

    isLeaf = True

    def __init__(self, sampler: StatusSampler) -> None:
        Resource.__init__(self)
        self._sampler = sampler

    def render_GET(self, request) -> bytes:
        refused = refuse_unless_readable(request, self._sampler.core)
        if refused is not None:
            return refused
        self._sampler.start()
        request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        # The page runs its own script and style only, and talks to this
        # origin only.
        request.setHeader(
            b"Content-Security-Policy",
            b"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            b"connect-src 'self'; img-src data:",
        )
        return render_page(self._sampler.frame())


class StatusEvents(Resource):
    """
    C{GET /events}: the frames as server-sent events, one a second.
    """

    isLeaf = True

    def __init__(self, sampler: StatusSampler) -> None:
        Resource.__init__(self)
        self._sampler = sampler

    def render_GET(self, request):
        refused = refuse_unless_readable(request, self._sampler.core)
        if refused is not None:
            return refused
        self._sampler.start()
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        # Reverse proxies in front must not buffer the stream.
        request.setHeader(b"X-Accel-Buffering", b"no")
        request.write(b"retry: 2000\n\n" + self._sampler.event())
        self._sampler.subscribe(request)
        return NOT_DONE_YET


_samplers: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def sampler_for(core, clock) -> StatusSampler:
    """
    The one sampler of a core, shared by the page and the stream.
    """
    sampler = _samplers.get(core)
    if sampler is None:
        sampler = _samplers[core] = StatusSampler(core, clock)
    return sampler


def status_page(core, reactor) -> StatusPage:
    """
    Mount factory of C{/} (L{lbproxy.admin.mounts.PAGES}).
    """
    return StatusPage(sampler_for(core, reactor))


def events_page(core, reactor) -> StatusEvents:
    """
    Mount factory of C{/events}.
    """
    return StatusEvents(sampler_for(core, reactor))
