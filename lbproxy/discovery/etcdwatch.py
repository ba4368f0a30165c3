# -*- test-case-name: tests.test_etcd -*-
"""
Following etcd: one watch per instance, revision-tracked.

The loop, per endpoint in turn:

  1. (with C{user}) authenticate;
  2. read the whole prefix: its keys and the revision R they are current
     at replace what was known (L{EtcdState.reset});
  3. watch the prefix from R + 1, so that nothing written after the read
     is missed; each event newer than what is known is applied in order;
  4. the watch ends when etcd goes away (or restarts), or etcd cancels it
     because the revision it needs was compacted: back to 2 (at once after
     a compaction, after a back-off delay with jitter otherwise).

Every change asks for a reload (L{lbproxy.app.reload.Reloader}) with the
state laid over the file: the whole result is validated like a file and
put in service all or nothing; a bad value is logged with its etcd key and
changes nothing.  Changes that come while a reload runs are taken by one
more reload after it.  While etcd is unreachable the last good
configuration keeps serving; the outage is logged when it starts and when
it ends, not on every retry.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional

from twisted.application.service import Service
from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from lbproxy.discovery.backoff import Backoff
from lbproxy.discovery.etcdclient import EtcdError, parse_events
from lbproxy.discovery.etcdstate import EtcdState

__all__ = ["EtcdWatch"]

log = Logger()


class _Compacted(Exception):
    """
    The watch cannot go on from what is known: read everything again now
    (etcd compacted the revision it needs, or the watch went silent).
    """

#: Seconds between checks that the watch still delivers (L{EtcdWatch.check}).
CHECK_INTERVAL = 30.0


class EtcdWatch(Service):
    """
    @ivar state: the L{EtcdState} (also the reloader's overlay).
    @ivar syncs: full reads done (for tests and the status).
    @ivar compactions: watches etcd canceled for a compaction.
    """

    def __init__(
        self,
        config,
        clock,
        clients: List[Any],
        reload: Callable[[str], Any],
        backoff: Optional[Backoff] = None,
        checkInterval: float = CHECK_INTERVAL,
    ) -> None:
        """
        @param config: the L{lbproxy.config.etcd.EtcdConfig}.
        @param clients: an L{lbproxy.discovery.etcdclient.EtcdClient} per
            endpoint.
        @param reload: C{reload(source) -> Deferred} of the outcome.
        """
        self.config = config
        self.clock = clock
        self.clients = clients
        self._reload = reload
        self.backoff = backoff or Backoff(initial=0.5, cap=30.0)
        self.state = EtcdState(config.prefix)
        self.syncs = 0
        self.compactions = 0
        self._index = 0
        self._stop: Optional[Callable[[], None]] = None
        self._sleep = None
        self._down = False
        self._reloading = False
        self._dirty = False
        self._running: Any = None
        self.checkInterval = checkInterval
        self._checker = None
        self._suspect = 0
        self._silent = False
        self.stalls = 0

    # -- the loop ------------------------------------------------------------------

    def startService(self) -> None:
        Service.startService(self)
        self._running = self._loop()
        self._checker = self.clock.callLater(self.checkInterval, self.check)

    def stopService(self):
        Service.stopService(self)
        if self._checker is not None and self._checker.active():
            self._checker.cancel()
        self._checker = None
        if self._sleep is not None and self._sleep.active():
            self._sleep.cancel()
        self._sleep = None
        if self._stop is not None:
            self._stop()
        return self._running

    @inlineCallbacks
    def _loop(self):
        while self.running:
            client = self.clients[self._index % len(self.clients)]
            compacted = False
            try:
                yield self._follow(client)
                reason = "the watch ended (etcd closed it)"
            except _Compacted as e:
                compacted = True
                reason = str(e)
            except Exception as e:
                reason = f"{e.__class__.__name__}: {e}"
            self._stop = None
            if not self.running:
                return
            if self._silent:
                self._silent, compacted = False, True
                reason = "the watch went silent"
            if compacted:
                self.compactions += 1
                log.warn("etcd {base}: {reason}; reading everything again",
                         base=client.base, reason=reason)
                continue
            if not self._down:
                self._down = True
                log.warn("etcd {base} unreachable ({reason}); the last good configuration "
                         "keeps serving, retrying with back-off", base=client.base,
                         reason=reason)
            self._index += 1
            delay = self.backoff.next()
            yield self._wait(delay)

    def _wait(self, delay: float):
        from twisted.internet.defer import Deferred

        d: Deferred = Deferred()
        self._sleep = self.clock.callLater(delay, d.callback, None)
        return d

    @inlineCallbacks
    def _follow(self, client):
        config = self.config
        if config.user is not None:
            yield client.authenticate(config.user, config.password)
        kvs, revision = yield client.readPrefix(config.prefix)
        self.syncs += 1
        if self._down:
            self._down = False
            log.info("etcd {base} reachable again at revision {revision}",
                     base=client.base, revision=revision)
        self.backoff.reset()
        if self.state.reset(kvs, revision):
            self.changed()
        problem: List[Exception] = []

        def onMessage(result: Dict[str, Any]) -> None:
            if problem:
                return
            try:
                self.message(result)
            except Exception as e:
                problem.append(e)
                stop()

        done, stop = client.watch(config.prefix, revision + 1, onMessage)
        self._stop = stop
        try:
            yield done
        except Exception:
            if not problem:
                raise
        if problem:
            raise problem[0]

    def check(self) -> None:
        """
        Every C{checkInterval} seconds: ask etcd for the newest change under
        the prefix.  If the watch has not delivered one etcd had at the
        previous check, it has quietly stopped: end it and read everything
        again.  (Deletions do not show here; any later put does.)
        """
        self._checker = self.clock.callLater(self.checkInterval, self.check)
        if self._stop is None:
            self._suspect = 0
            return
        stop = self._stop
        if self._suspect and self.state.revision < self._suspect:
            self.stalls += 1
            log.warn("etcd: the watch delivered nothing up to revision {newest} for "
                     "{seconds:g} s (the proxy is at {known}); watching again",
                     newest=self._suspect, seconds=self.checkInterval,
                     known=self.state.revision)
            self._suspect = 0
            self._silent = True
            stop()
            return
        client = self.clients[self._index % len(self.clients)]
        d = client.newestRevision(self.config.prefix)

        def newest(revision: int) -> None:
            self._suspect = revision if revision > self.state.revision else 0

        d.addCallbacks(newest, lambda f: None)

    def message(self, result: Dict[str, Any]) -> None:
        """
        One message of the watch stream.

        @raise _Compacted: etcd canceled the watch for a compaction.
        """
        if result.get("canceled"):
            compact = result.get("compact_revision")
            if compact:
                raise _Compacted(f"watch canceled: revision {self.state.revision + 1} "
                                 f"was compacted (compact revision {compact})")
            raise EtcdError(f"watch canceled: {result.get('cancel_reason', 'no reason')}")
        if "error" in result:
            raise EtcdError(f"watch error: {result['error']}")
        events = parse_events(result.get("events", []))
        if events and self.state.apply(events):
            self.changed()

    # -- reloads -------------------------------------------------------------------

    def changed(self) -> None:
        """
        etcd's keys changed: reload (or once more after the one running).
        """
        if self._reloading:
            self._dirty = True
            return
        self._reloading = True
        d = self._reload("etcd")
        d.addBoth(self._reloaded)

    def _reloaded(self, outcome):
        self._reloading = False
        if isinstance(outcome, dict) and outcome.get("applied"):
            log.debug("etcd revision {revision} applied", revision=self.state.revision)
        if self._dirty:
            self._dirty = False
            self.changed()
        return None
