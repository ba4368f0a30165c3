# -*- test-case-name: tests.test_etcd -*-
"""
The few calls of etcd v3's HTTP/JSON gateway lbproxy makes, through
C{treq}: a range read of a prefix, a streaming watch, authentication.

Keys and values travel base64-encoded; 64-bit numbers come as strings.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable, Dict, List, Optional, Tuple

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone

__all__ = ["EtcdClient", "EtcdError", "b64", "prefix_end", "parse_events"]


class EtcdError(Exception):
    """
    etcd answered with an error, or something that is not its answer.
    """


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """
    The C{range_end} that makes a range of every key starting with C{prefix}.
    """
    data = bytearray(prefix)
    while data:
        if data[-1] < 0xFF:
            data[-1] += 1
            return bytes(data)
        data.pop()
    return b"\0"


def parse_kvs(kvs: List[Dict[str, Any]]) -> List[Tuple[str, bytes, int]]:
    """
    C{(key, value, mod_revision)} of a range answer's C{kvs}.
    """
    return [
        (unb64(kv["key"]).decode("utf-8", "replace"), unb64(kv.get("value", "")),
         int(kv.get("mod_revision", 0)))
        for kv in kvs
    ]


def parse_events(events: List[Dict[str, Any]]) -> List[Tuple[str, str, Optional[bytes], int]]:
    """
    C{(kind, key, value, mod_revision)} of a watch answer's C{events}.
    """
    parsed = []
    for event in events:
        kv = event.get("kv", {})
        kind = event.get("type", "PUT")
        key = unb64(kv.get("key", "")).decode("utf-8", "replace")
        value = None if kind == "DELETE" else unb64(kv.get("value", ""))
        parsed.append((kind, key, value, int(kv.get("mod_revision", 0))))
    return parsed


class _Lines(Protocol):
    """
    A streaming body as JSON messages, one per line.
    """

    def __init__(self, onMessage: Callable[[Dict[str, Any]], None], done: Deferred) -> None:
        self._onMessage = onMessage
        self._done = done
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            if line.strip():
                self._onMessage(json.loads(line))

    def connectionLost(self, reason) -> None:
        if self._buffer.strip():
            try:
                self._onMessage(json.loads(self._buffer))
            except ValueError:
                pass
        self._buffer = b""
        if reason.check(ResponseDone):
            self._done.callback(None)
        else:
            self._done.errback(reason)


class EtcdClient:
    """
    One etcd endpoint's gateway.

    @ivar base: the endpoint's base URL (C{"http://127.0.0.1:2379"}).
    """

    def __init__(self, reactor, base: str, contextFactory=None, treqClient=None) -> None:
        self.base = base
        self.token: Optional[str] = None
        if treqClient is None:
            from treq.client import HTTPClient

            pool = HTTPConnectionPool(reactor, persistent=False)
            # Not a "Starting factory" log line per call (the pool's
            # factory class is private to Twisted; were it renamed, the
            # lines come back, nothing else changes).
            factory = getattr(pool, "_factory", None)
            if factory is not None:
                pool._factory = type("QuietHTTP11ClientFactory", (factory,), {"noisy": False})
            if contextFactory is not None:
                agent = Agent(reactor, contextFactory, connectTimeout=5, pool=pool)
            else:
                agent = Agent(reactor, connectTimeout=5, pool=pool)
            treqClient = HTTPClient(agent)
        self._treq = treqClient

    def _headers(self) -> Dict[bytes, List[bytes]]:
        headers = {b"Content-Type": [b"application/json"]}
        if self.token:
            headers[b"Authorization"] = [self.token.encode("ascii")]
        return headers

    @inlineCallbacks
    def call(self, path: str, body: Dict[str, Any]):
        """
        POST C{body} to C{/v3/PATH}; the answer as JSON.
        """
        response = yield self._treq.post(
            self.base + path, data=json.dumps(body).encode("utf-8"), headers=self._headers()
        )
        text = yield response.content()
        try:
            answer = json.loads(text)
        except ValueError:
            raise EtcdError(f"{path}: HTTP {response.code}, not JSON: {text[:200]!r}") from None
        if response.code != 200 or "error" in answer:
            raise EtcdError(f"{path}: HTTP {response.code}: "
                            f"{answer.get('error') or answer.get('message') or answer}")
        return answer

    @inlineCallbacks
    def authenticate(self, user: str, password: str):
        answer = yield self.call("/v3/auth/authenticate", {"name": user, "password": password})
        self.token = answer["token"]

    @inlineCallbacks
    def readPrefix(self, prefix: str):
        """
        Every key under C{prefix}.

        @return: a L{Deferred} firing with C{([(key, value, mod_revision)],
            revision)}.
        """
        key = prefix.encode("utf-8")
        answer = yield self.call(
            "/v3/kv/range", {"key": b64(key), "range_end": b64(prefix_end(key))}
        )
        return parse_kvs(answer.get("kvs", [])), int(answer["header"]["revision"])

    @inlineCallbacks
    def newestRevision(self, prefix: str):
        """
        The revision of the newest change to a key under C{prefix} (0: no
        key), without reading values.
        """
        key = prefix.encode("utf-8")
        answer = yield self.call("/v3/kv/range", {
            "key": b64(key), "range_end": b64(prefix_end(key)), "limit": 1,
            "sort_order": "DESCEND", "sort_target": "MOD", "keys_only": True,
        })
        kvs = answer.get("kvs", [])
        return int(kvs[0].get("mod_revision", 0)) if kvs else 0

    @inlineCallbacks
    def put(self, key: str, value: bytes):
        answer = yield self.call("/v3/kv/put", {"key": b64(key.encode("utf-8")),
                                                "value": b64(value)})
        return int(answer["header"]["revision"])

    def watch(self, prefix: str, startRevision: int,
              onMessage: Callable[[Dict[str, Any]], None]) -> Tuple[Deferred, Callable[[], None]]:
        """
        Watch every key under C{prefix} from C{startRevision}.

        @param onMessage: called with each message's C{result}.
        @return: a L{Deferred} firing when the stream ends (an error when
            it broke), and a function that stops it.
        """
        key = prefix.encode("utf-8")
        body = {"create_request": {
            "key": b64(key), "range_end": b64(prefix_end(key)),
            "start_revision": str(startRevision),
        }}
        done: Deferred = Deferred()
        state: Dict[str, Any] = {"protocol": None}

        def responded(response):
            if response.code != 200:
                raise EtcdError(f"/v3/watch: HTTP {response.code}")
            protocol = _Lines(lambda message: onMessage(message.get("result", message)), done)
            state["protocol"] = protocol
            response.deliverBody(protocol)

        requested = self._treq.post(
            self.base + "/v3/watch", data=json.dumps(body).encode("utf-8"),
            headers=self._headers(),
        )
        requested.addCallback(responded)
        requested.addErrback(lambda f: done.called or done.errback(f))

        def stop():
            protocol = state["protocol"]
            if protocol is not None and protocol.transport is not None:
                protocol.transport.stopProducing()
            elif not requested.called:
                requested.cancel()

        return done, stop
