# -*- test-case-name: tests.test_feed -*-
"""
A deployment agent's WebSocket feed of one pool's targets
(C{discovery = { websocket = "ws://agent:7000/backends" }}).

lbproxy connects as a client (autobahn) and reads text messages, each a
JSON array of the pool's targets, in the file's target forms:
C{[{"address": "10.0.0.3:8000", "weight": 3}, "10.0.0.4:8000"]}.  Each
valid list becomes the pool's whole membership (targets left out drain);
a malformed message is logged and ignored.  When the connection is lost
or refused, the last targets keep serving and lbproxy reconnects after
0.5 s, 1 s, 2 s, ... up to 30 s (each delay jittered down by up to 20 %;
the schedule starts over once connected).
"""

from __future__ import annotations

import json
from typing import Callable, Dict, Optional, Tuple
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.application.service import Service
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.ssl import optionsForClientTLS
from twisted.logger import Logger

from lbproxy.config.errors import ConfigError
from lbproxy.config.reader import Reader
from lbproxy.config.targets import Target, parse_target_entry
from lbproxy.discovery.backoff import Backoff

__all__ = ["FeedError", "PoolFeed", "parse_targets"]

log = Logger()

#: The most targets one message may list.
MAX_TARGETS = 10_000


class FeedError(ValueError):
    """
    A message that is not a valid target list (the reason).
    """


def parse_targets(payload: bytes) -> Tuple[Target, ...]:
    """
    A feed message's targets, validated as the file's are.

    @raise FeedError: naming the entry and the reason.
    """
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise FeedError(f"not JSON: {e}") from None
    if not isinstance(data, list):
        raise FeedError("expected a JSON array of targets")
    if not data:
        raise FeedError("an empty list (a pool needs at least one target)")
    if len(data) > MAX_TARGETS:
        raise FeedError(f"more than {MAX_TARGETS} targets")
    reader = Reader("feed")
    targets = []
    seen: Dict[str, int] = {}
    for index, entry in enumerate(data):
        try:
            target = parse_target_entry(entry, f"[{index}]", reader)
        except ConfigError as e:
            raise FeedError(f"{e.key}: {e.reason}") from None
        if target.address in seen:
            raise FeedError(f"[{index}]: duplicate target {target.address!r} "
                            f"(also [{seen[target.address]}])")
        seen[target.address] = index
        targets.append(target)
    if not any(target.weight for target in targets):
        raise FeedError("at least one target needs a weight above 0")
    return tuple(targets)


class _FeedProtocol(WebSocketClientProtocol):
    def onOpen(self) -> None:
        self.factory.feed.connected(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.factory.feed.received(payload)

    def onClose(self, wasClean: bool, code, reason) -> None:
        self.factory.feed.closed(self, reason or f"code {code}")


class PoolFeed(Service):
    """
    One pool's feed: connects, applies each list, reconnects with back-off.

    @ivar url: the feed's C{ws://} URL.
    @ivar pool: the pool's name.
    @ivar applied: lists applied; C{ignored}: malformed messages.
    """

    def __init__(
        self,
        url: str,
        pool: str,
        reactor,
        apply: Callable[[str, Tuple[Target, ...]], None],
        backoff: Optional[Backoff] = None,
        endpoint=None,
    ) -> None:
        """
        @param apply: C{apply(pool, targets)} puts a list in service
            (L{lbproxy.admin.changes.set_members}).
        @param endpoint: the client endpoint to connect through (default:
            the URL's host and port, TLS for C{wss://}).
        """
        self.url = url
        self.pool = pool
        self.reactor = reactor
        self._apply = apply
        self.backoff = backoff or Backoff(initial=0.5, cap=30.0)
        parts = urlsplit(url)
        if endpoint is None:
            endpoint = HostnameEndpoint(reactor, parts.hostname, parts.port, timeout=10)
            if parts.scheme == "wss":
                endpoint = wrapClientTLS(optionsForClientTLS(parts.hostname), endpoint)
        self._endpoint = endpoint
        self.factory = WebSocketClientFactory(url)
        self.factory.protocol = _FeedProtocol
        # Not a "Starting factory" line per reconnection attempt.
        self.factory.noisy = False
        self.factory.feed = self
        self.applied = 0
        self.ignored = 0
        self.delays = []
        self._protocol = None
        self._retry = None
        self._connecting = None
        self._lost = False

    def startService(self) -> None:
        Service.startService(self)
        self._connect()

    def stopService(self):
        Service.stopService(self)
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self._connecting is not None:
            self._connecting.cancel()
        if self._protocol is not None:
            self._protocol.dropConnection(abort=True)

    def _connect(self) -> None:
        self._retry = None
        d = self._endpoint.connect(self.factory)
        self._connecting = d

        def failed(failure):
            self._connecting = None
            if self.running:
                self._again(f"cannot connect: {failure.getErrorMessage()}")

        def made(protocol):
            self._connecting = None

        d.addCallbacks(made, failed)

    def _again(self, reason: str) -> None:
        delay = self.backoff.next()
        self.delays.append(delay)
        if not self._lost:
            self._lost = True
            log.warn("discovery {url} (pool {pool}): {reason}; keeping the last targets, "
                     "reconnecting with back-off", url=self.url, pool=self.pool, reason=reason)
        self._retry = self.reactor.callLater(delay, self._connect)

    # -- from the protocol ---------------------------------------------------------

    def connected(self, protocol) -> None:
        self._protocol = protocol
        self.backoff.reset()
        if self._lost:
            self._lost = False
        log.info("discovery {url} (pool {pool}): connected", url=self.url, pool=self.pool)

    def received(self, payload: bytes) -> None:
        """
        One message: a valid list is applied; anything else is logged and
        ignored.
        """
        try:
            targets = parse_targets(payload)
            self._apply(self.pool, targets)
        except Exception as e:
            self.ignored += 1
            log.warn("discovery {url} (pool {pool}): message ignored: {reason}",
                     url=self.url, pool=self.pool, reason=str(e))
            return
        self.applied += 1

    def closed(self, protocol, reason) -> None:
        was = self._protocol
        self._protocol = None
        if self.running and (was is protocol or was is None):
            self._again(f"connection closed ({reason})")
