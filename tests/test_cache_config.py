"""
The [cache] table and the routes' cache and compress keys.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config import ConfigError, parse_config
from lbproxy.config.cache import CacheConfig, CompressConfig, RouteCache


def document(route=None, cache=None):
    data = {"pools": {"web": {"targets": ["10.1.0.1:80"]}},
            "routes": [dict({"pool": "web"}, **(route or {}))]}
    if cache is not None:
        data["cache"] = cache
    return data


class CacheConfigTests(SynchronousTestCase):
    def error(self, data):
        return self.assertRaises(ConfigError, parse_config, data, "t.toml")

    def test_defaults(self):
        config = parse_config(document(), "t.toml")
        self.assertEqual(config.cache, CacheConfig(256 << 20, 8 << 20))
        self.assertIsNone(config.routes[0].cache)
        self.assertIsNone(config.routes[0].compress)

    def test_cacheTable(self):
        config = parse_config(document(cache={"max_bytes": "256MiB", "max_object": "8MiB"}), "t")
        self.assertEqual(config.cache, CacheConfig(256 << 20, 8 << 20))

    def test_cacheErrors(self):
        e = self.error(document(cache={"max_bytes": "1MiB", "max_object": "2MiB"}))
        self.assertEqual(e.key, "cache.max_object")
        self.assertIn("max_bytes", e.reason)
        self.assertEqual(self.error(document(cache={"max_bytes": 0})).key, "cache.max_bytes")
        self.assertEqual(self.error(document(cache={"size": 1})).key, "cache.size")

    def test_routeCache(self):
        routes = parse_config(document({"cache": True}), "t").routes
        self.assertEqual(routes[0].cache, RouteCache())
        self.assertIsNone(parse_config(document({"cache": False}), "t").routes[0].cache)
        table = {"static_ttl": 300, "stale_while_revalidate": 30, "stale_if_error": 600}
        self.assertEqual(parse_config(document({"cache": table}), "t").routes[0].cache,
                         RouteCache(300.0, 30.0, 600.0))

    def test_routeCacheErrors(self):
        e = self.error(document({"cache": {"static_ttl": -1}}))
        self.assertEqual(e.key, "routes[0].cache.static_ttl")
        e = self.error(document({"cache": {"ttl": 1}}))
        self.assertEqual(e.key, "routes[0].cache.ttl")
        e = self.error(document({"cache": "yes"}))
        self.assertEqual(e.key, "routes[0].cache")

    def test_compress(self):
        self.assertEqual(parse_config(document({"compress": True}), "t").routes[0].compress,
                         CompressConfig())
        table = {"types": ["text/html", "Application/JSON", "text/*"], "min_size": "2k", "level": 5}
        self.assertEqual(parse_config(document({"compress": table}), "t").routes[0].compress,
                         CompressConfig(("text/html", "application/json", "text/*"), 2048, 5))

    def test_compressErrors(self):
        for table, key in (({"level": 10}, "routes[0].compress.level"),
                           ({"types": ["html"]}, "routes[0].compress.types[0]"),
                           ({"types": []}, "routes[0].compress.types"),
                           ({"types": ["*/*"]}, "routes[0].compress.types[0]"),
                           ({"gzip": True}, "routes[0].compress.gzip")):
            self.assertEqual(self.error(document({"compress": table})).key, key, table)
