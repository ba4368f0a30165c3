# -*- test-case-name: tests.test_sharedlimit -*-
"""
Rate limits shared through Redis, in memory: the C{shared} key, the RESP
client (replies split anywhere, errors, a lost connection, a timeout), and
the stage through the proxy: held and resumed on Redis's answer, local
buckets when Redis is unreachable or fails, the fallback logged once.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, parse_config
from lbproxy.discovery.redis import (
    RedisClient, RedisError, RedisProtocol, RedisUnavailable, encode_command, parse_url,
)
from lbproxy.stages.sharedlimit import GCRA_SCRIPT
from lbproxy.testing import AbortableTransport, ProxyHarness

URL = "redis://127.0.0.1:6379/0"
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def config(shared=URL):
    limit = {"rate": 1, "burst": 2}
    if shared:
        limit["shared"] = shared
    return {"pools": {"web": {"targets": ["127.0.0.1:8001"]}},
            "routes": [{"path": "/", "pool": "web"}], "rate_limit": limit}


class ConfigTests(SynchronousTestCase):
    def test_shared(self):
        self.assertEqual(parse_config(config()).rate_limit.shared, URL)
        for bad in ["http://h:1/0", "redis://h:1/x", "redis://", 5]:
            with self.assertRaises(ConfigError) as e:
                parse_config(config(bad))
            self.assertEqual(e.exception.key, "rate_limit.shared")

    def test_url(self):
        self.assertEqual(parse_url("redis://:pw@h:7/3"), ("h", 7, 3, "pw"))
        self.assertEqual(parse_url("redis://h"), ("h", 6379, 0, None))


class ProtocolTests(SynchronousTestCase):
    def test_replies(self):
        protocol = RedisProtocol()
        protocol.makeConnection(AbortableTransport())
        results = []
        for args in [("GET", "a"), ("EVALSHA", "x", 0), ("X",), ("Y",), ("Z",)]:
            protocol.send(*args).addBoth(results.append)
        self.assertTrue(protocol.transport.value().startswith(b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n"))
        self.assertEqual(encode_command("GET", "a"), b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n")
        data = b"$3\r\n0.5\r\n-NOSCRIPT no\r\n*2\r\n:1\r\n$-1\r\n+OK\r\n"
        for i in range(len(data)):
            protocol.dataReceived(data[i:i + 1])
        self.assertEqual(results[0], b"0.5")
        self.assertIsInstance(results[1].value, RedisError)
        self.assertEqual(results[2:], [[1, None], "OK"])
        protocol.connectionLost(Failure(ConnectionError()))
        self.assertIsInstance(results[4].value, RedisUnavailable)


class Endpoint:
    def __init__(self):
        self.protocols = []

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        protocol.makeConnection(AbortableTransport())
        self.protocols.append(protocol)
        return succeed(protocol)


class ClientTests(SynchronousTestCase):
    def test_loadTimeoutReconnect(self):
        """
        Scripts are loaded on connecting; a command unanswered within the
        timeout drops the connection (its caller gets RedisUnavailable) and
        a new one is made after the back-off; each change is told once.
        """
        clock = Clock()
        endpoint = Endpoint()
        states = []
        client = RedisClient(URL, clock, timeout=0.25, scripts=(GCRA_SCRIPT,),
                             endpoint=endpoint, onState=lambda up, why: states.append(up))
        self.assertFalse(client.ready)
        protocol = endpoint.protocols[0]
        self.assertIn(b"SCRIPT", protocol.transport.value())
        protocol.dataReceived(b"$4\r\nabcd\r\n")
        self.assertTrue(client.ready)
        self.assertEqual(client.shas, ["abcd"])
        results = []
        client.evalsha(0, ("k",), ("1", "0")).addBoth(results.append)
        protocol.dataReceived(b"$1\r\n0\r\n")
        self.assertEqual(results, [b"0"])
        client.evalsha(0, ("k",), ("1", "0")).addBoth(results.append)
        clock.advance(0.25)
        self.assertTrue(protocol.transport.aborted)
        protocol.connectionLost(Failure(ConnectionError()))
        self.assertIsInstance(results[1].value, RedisUnavailable)
        self.assertFalse(client.ready)
        self.assertEqual(states, [True, False])
        clock.advance(0.5)
        self.assertEqual(len(endpoint.protocols), 2)
        client.close()


class FakeRedis:
    ready = True

    def __init__(self):
        self.calls = []

    def evalsha(self, index, keys, args):
        d = Deferred()
        self.calls.append((keys, args, d))
        return d


class StageTests(SynchronousTestCase):
    def setUp(self):
        self.harness = ProxyHarness(config(shared=None))
        self.redis = FakeRedis()
        self.harness.core.services.redis[URL] = self.redis
        self.harness.core.apply(parse_config(config(), "test.toml"))

    def request(self):
        client = self.harness.client()
        client.send(GET)
        return client

    def test_heldAndResumed(self):
        """
        The request waits for Redis: allowed goes on to the backend,
        refused gets 429 with Retry-After; a key per client.
        """
        first = self.request()
        self.assertEqual(len(self.redis.calls), 1)
        keys, args, d = self.redis.calls[0]
        self.assertEqual(keys, ("lbproxy:rl:*:1:2:10.0.0.1",))
        self.assertEqual(args, ("1.0", "1.0"))
        self.assertEqual(self.harness.pending(), [])
        d.callback(b"0")
        self.assertEqual(self.harness.pending(), ["127.0.0.1:8001"])
        self.assertEqual(first.received(), b"")
        second = self.request()
        self.redis.calls[1][2].callback(b"1.5")
        self.assertIn(b"429", second.received().split(b"\r\n")[0])
        self.assertIn(b"Retry-After: 2", second.received())

    def test_fallback(self):
        """
        Redis failing a check or unreachable: this proxy's buckets decide
        (burst 2, then 429), and no request fails for it.
        """
        self.request()
        self.redis.calls[0][2].errback(RedisUnavailable("gone"))
        self.assertEqual(self.harness.pending(), ["127.0.0.1:8001"])
        self.redis.ready = False
        self.request()
        third = self.request()
        self.assertEqual(len(self.redis.calls), 1)
        self.assertIn(b" 429 ", third.received().split(b"\r\n")[0] + b" ")

    def test_loggedOnce(self):
        """
        Going down is logged once, not per request.
        """
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clock = Clock()

        class Refusing:
            def connect(self, factory):
                from twisted.internet.defer import fail
                return fail(ConnectionRefusedError())

        from lbproxy.stages.sharedlimit import _onState
        client = RedisClient(URL, clock, endpoint=Refusing(), onState=_onState(URL))
        for _ in range(5):
            clock.advance(30)
        client.close()
        warned = [e for e in events if "fall back" in e.get("log_format", "")]
        self.assertEqual(len(warned), 1)
