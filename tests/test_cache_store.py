"""
The store: variants, LRU order and byte accounting, purge by prefix, and
the periodic collector on a Clock.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.cache.shared import SharedCache
from lbproxy.cache.store import CacheStore, Entry


def entry(key=b"http://h/a", body=b"x" * 100, lifetime=60.0, headers=(), names=(), values=(),
          now=0.0, swr=0.0, sie=0.0):
    return Entry(key, names, values, 200, b"OK", list(headers), body, now, now, lifetime, {},
                 swr, sie)


class StoreTests(SynchronousTestCase):
    def test_lookupAndVariants(self):
        store = CacheStore(10 ** 6, 10 ** 5)
        gz = entry(names=(b"accept-encoding",), values=(b"gzip",), body=b"gz")
        plain = entry(names=(b"accept-encoding",), values=(None,), body=b"plain")
        store.put(gz)
        store.put(plain)
        self.assertIs(store.lookup(b"http://h/a", {b"accept-encoding": [b"gzip"]}.get), gz)
        self.assertIs(store.lookup(b"http://h/a", {}.get), plain)
        self.assertIsNone(store.lookup(b"http://h/a", {b"accept-encoding": [b"br"]}.get))
        self.assertEqual(len(store), 2)

    def test_newVaryReplacesOthers(self):
        store = CacheStore(10 ** 6, 10 ** 5)
        store.put(entry(names=(b"accept-encoding",), values=(b"gzip",)))
        store.put(entry(names=(b"accept-language",), values=(b"fr",)))
        self.assertEqual(len(store), 1)

    def test_byteAccounting(self):
        store = CacheStore(10 ** 6, 10 ** 5)
        entries = [entry(key=b"http://h/%d" % i, body=b"y" * (i * 10)) for i in range(20)]
        for e in entries:
            store.put(e)
        self.assertEqual(store.bytes, sum(e.size for e in entries))
        store.remove(b"http://h/3")
        store.purge_prefix(b"http://h/1")
        left = [e for e in entries if e.key != b"http://h/3" and not e.key.startswith(b"http://h/1")]
        self.assertEqual(store.bytes, sum(e.size for e in left))
        self.assertEqual(len(store), len(left))
        replaced = entry(key=b"http://h/2", body=b"z")
        store.put(replaced)
        self.assertEqual(store.bytes, sum(e.size for e in left if e.key != b"http://h/2")
                         + replaced.size)

    def test_lruEviction(self):
        one = entry(key=b"http://h/1").size
        store = CacheStore(one * 3, 10 ** 5)
        for i in range(3):
            store.put(entry(key=b"http://h/%d" % i))
        # Using /0 makes /1 the least recently used.
        self.assertIsNotNone(store.lookup(b"http://h/0", {}.get))
        store.put(entry(key=b"http://h/3"))
        self.assertEqual([e.key for e in store.entries()], [b"http://h/2", b"http://h/0", b"http://h/3"])
        self.assertEqual(store.evicted, 1)
        self.assertLessEqual(store.bytes, store.maxBytes)

    def test_maxObject(self):
        store = CacheStore(10 ** 6, 50)
        self.assertFalse(store.put(entry(body=b"x" * 51)))
        self.assertTrue(store.put(entry(body=b"x" * 50)))

    def test_purgePrefix(self):
        store = CacheStore(10 ** 6, 10 ** 5)
        for key in (b"http://a/static/x", b"http://a/static/y", b"http://a/api", b"http://b/static/x"):
            store.put(entry(key=key))
        self.assertEqual(store.purge_prefix(b"http://a/static/"), 2)
        self.assertEqual(sorted(e.key for e in store.entries()), [b"http://a/api", b"http://b/static/x"])
        self.assertEqual(store.purge_prefix(b""), 2)
        self.assertEqual(store.bytes, 0)


class CollectorTests(SynchronousTestCase):
    def test_collectsExpiredOnClock(self):
        clock = Clock()
        cache = SharedCache(clock, 10 ** 6, 10 ** 5, interval=10)
        cache.start()
        cache.store.put(entry(key=b"http://h/short", lifetime=5))
        cache.store.put(entry(key=b"http://h/windows", lifetime=5, swr=20, sie=40))
        cache.store.put(entry(key=b"http://h/validator", lifetime=5,
                              headers=[(b"ETag", b'"v"')]))
        cache.store.put(entry(key=b"http://h/long", lifetime=1000))
        clock.advance(10)
        self.assertEqual(sorted(e.key for e in cache.store.entries()),
                         [b"http://h/long", b"http://h/validator", b"http://h/windows"])
        clock.advance(40)  # t=50: windows end at 45
        self.assertEqual(sorted(e.key for e in cache.store.entries()),
                         [b"http://h/long", b"http://h/validator"])
        clock.advance(20)  # t=70: a validator keeps it 60 s more than its lifetime
        self.assertEqual([e.key for e in cache.store.entries()], [b"http://h/long"])
        self.assertEqual(cache.counters["collected"], 3)
        cache.stop()
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_purgeCounted(self):
        cache = SharedCache(Clock(), 10 ** 6, 10 ** 5)
        cache.store.put(entry(key=b"http://h/a"))
        self.assertEqual(cache.purge(b"http://h/"), 1)
        self.assertEqual(cache.stats()["purged"], 1)
        self.assertEqual(cache.stats()["entries"], 0)
