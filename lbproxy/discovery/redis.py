# -*- test-case-name: tests.test_sharedlimit -*-
"""
A small Redis client over Twisted: RESP2 commands and replies, one
connection, pipelined, reconnecting with back-off.

Why not txredisapi: its last release (1.4.x/1.6) is barely maintained,
is tested against old Twisted only, and brings a whole API (pub/sub,
sharding, its own reconnecting factory) to send one command, EVALSHA.
Shared rate limits need exactly: connect, SELECT a database, SCRIPT LOAD,
EVALSHA with a timeout, and knowing at once when the connection is gone.
That is the hundred lines below.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional, Tuple
from urllib.parse import urlsplit

from twisted.internet.defer import Deferred, fail
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger

from lbproxy.discovery.backoff import Backoff

__all__ = ["RedisClient", "RedisError", "RedisUnavailable", "encode_command", "parse_url"]

log = Logger()


class RedisError(Exception):
    """
    An error reply (C{-ERR ...}).
    """


class RedisUnavailable(Exception):
    """
    No connection to Redis (or it did not answer in time).
    """


def parse_url(url: str) -> Tuple[str, int, int, Optional[str]]:
    """
    C{redis://[:password@]host[:port][/db]} as C{(host, port, db, password)}.

    @raise ValueError: for anything else.
    """
    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise ValueError('expected "redis://host:port/db"')
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ValueError(f"the database must be a number, got {path!r}")
    return parts.hostname, parts.port or 6379, int(path or 0), parts.password


def encode_command(*args: Any) -> bytes:
    """
    One command as a RESP array of bulk strings.
    """
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if not isinstance(arg, bytes):
            arg = str(arg).encode("utf-8")
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


class _Incomplete(Exception):
    pass


def _parse(data: bytes, at: int) -> Tuple[Any, int]:
    """
    One reply from C{data[at:]}: C{(value, next offset)}.

    @raise _Incomplete: when more bytes are needed.
    """
    end = data.find(b"\r\n", at)
    if end < 0:
        raise _Incomplete()
    kind, line = data[at:at + 1], data[at + 1:end]
    at = end + 2
    if kind == b"+":
        return line.decode("utf-8", "replace"), at
    if kind == b"-":
        return RedisError(line.decode("utf-8", "replace")), at
    if kind == b":":
        return int(line), at
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, at
        if len(data) < at + size + 2:
            raise _Incomplete()
        return data[at:at + size], at + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, at
        items = []
        for _ in range(count):
            item, at = _parse(data, at)
            items.append(item)
        return items, at
    raise ValueError(f"not a RESP reply: {data[at - 2 - len(line) - 1:at][:40]!r}")


class RedisProtocol(Protocol):
    """
    Commands out, replies matched to them in order.
    """

    def __init__(self) -> None:
        self._waiting: Deque[Deferred] = deque()
        self._buffer = b""

    def send(self, *args: Any) -> Deferred:
        d: Deferred = Deferred()
        self._waiting.append(d)
        self.transport.write(encode_command(*args))
        return d

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        at = 0
        buffer = self._buffer
        try:
            while at < len(buffer):
                value, at = _parse(buffer, at)
                d = self._waiting.popleft()
                if isinstance(value, RedisError):
                    d.errback(value)
                else:
                    d.callback(value)
        except _Incomplete:
            pass
        except (ValueError, IndexError) as e:
            log.error("redis: {error}; closing the connection", error=e)
            self.transport.abortConnection()
        self._buffer = buffer[at:]

    def connectionLost(self, reason) -> None:
        waiting, self._waiting = self._waiting, deque()
        for d in waiting:
            d.errback(RedisUnavailable("connection lost"))
        if self.onLost is not None:
            self.onLost(self)

    onLost: Optional[Callable[["RedisProtocol"], None]] = None


class RedisClient:
    """
    One connection to C{url}, made at once and again after it is lost
    (back-off 0.5 s doubling to 30 s, with jitter); scripts loaded on each
    connection.

    @ivar ready: whether commands can be sent now.
    """

    def __init__(self, url: str, reactor, timeout: float = 0.25,
                 scripts: Tuple[bytes, ...] = (), endpoint=None,
                 onState: Optional[Callable[[bool, str], None]] = None) -> None:
        """
        @param timeout: seconds a command may take before the connection is
            deemed gone (it is dropped and made again).
        @param scripts: Lua scripts to C{SCRIPT LOAD} on connecting.
        @param onState: called with C{(ready, reason)} when the connection
            comes up or goes down.
        """
        host, port, self.db, self.password = parse_url(url)
        self.url = url
        self.reactor = reactor
        self.timeout = timeout
        self.scripts = scripts
        self.shas: List[str] = []
        self._endpoint = endpoint or HostnameEndpoint(reactor, host, port, timeout=5)
        self._onState = onState
        self.backoff = Backoff(initial=0.5, cap=30.0)
        self.protocol: Optional[RedisProtocol] = None
        self.ready = False
        self._retry = None
        self._stopped = False
        self._connect()

    def _connect(self) -> None:
        self._retry = None
        d = self._endpoint.connect(Factory.forProtocol(RedisProtocol))
        d.addCallback(self._connected)
        d.addErrback(lambda f: self._down(f"cannot connect: {f.getErrorMessage()}"))

    def _connected(self, protocol: RedisProtocol):
        if self._stopped:
            protocol.transport.loseConnection()
            return None
        self.protocol = protocol
        protocol.onLost = self._lost
        steps = []
        if self.password:
            steps.append(protocol.send("AUTH", self.password))
        if self.db:
            steps.append(protocol.send("SELECT", self.db))
        loads = [protocol.send("SCRIPT", "LOAD", script) for script in self.scripts]
        from twisted.internet.defer import gatherResults

        d = gatherResults(steps + loads, consumeErrors=True)

        def loaded(results):
            self.shas = [sha.decode("ascii") for sha in results[len(steps):]]
            self.ready = True
            self.backoff.reset()
            if self._onState is not None:
                self._onState(True, "connected")

        def failed(f):
            protocol.transport.abortConnection()
            return None

        d.addCallbacks(loaded, failed)
        return None

    def _lost(self, protocol) -> None:
        if protocol is self.protocol:
            self.protocol = None
            self._down("connection lost")

    def _down(self, reason: str) -> None:
        wasReady, self.ready = self.ready, False
        if self._stopped:
            return
        if self._onState is not None:
            self._onState(False, reason) if wasReady or self.backoff.attempts == 0 else None
        self._retry = self.reactor.callLater(self.backoff.next(), self._connect)

    def evalsha(self, index: int, keys: Tuple[Any, ...], args: Tuple[Any, ...]) -> Deferred:
        """
        Run loaded script number C{index}.

        @return: a L{Deferred} of its reply; a L{RedisUnavailable} failure
            when not connected or no reply came within C{timeout} (the
            connection is then dropped and made again).
        """
        protocol = self.protocol
        if not self.ready or protocol is None:
            return fail(RedisUnavailable("not connected"))
        d = protocol.send("EVALSHA", self.shas[index], len(keys), *keys, *args)
        timer = self.reactor.callLater(self.timeout, self._timedOut, protocol)

        def answered(result):
            if timer.active():
                timer.cancel()
            return result

        return d.addBoth(answered)

    def _timedOut(self, protocol) -> None:
        if protocol is self.protocol:
            log.warn("redis {url}: no answer within {timeout} s; reconnecting",
                     url=self.url, timeout=self.timeout)
            protocol.transport.abortConnection()

    def close(self) -> None:
        self._stopped = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        if self.protocol is not None:
            self.protocol.transport.loseConnection()
