"""
The cache benchmark's configurations (pure): lbproxy's is valid, nginx's
caches with a lock; the backend's bodies are the same every time.
"""

from __future__ import annotations

import gzip

from twisted.trial.unittest import SynchronousTestCase

from bench.cache import (
    lbproxy_cache_config, nginx_cache_backend_config, nginx_cache_proxy_config,
)
from bench.cache_backend import html_body, json_body
from lbproxy.config import parse_config

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]


class BenchCacheConfigTests(SynchronousTestCase):
    def test_lbproxyConfigValid(self):
        for slow in (None, 9003):
            config = parse_config(tomllib.loads(lbproxy_cache_config(9001, 9002, slow)), "b")
            self.assertIsNotNone(config.routes[0].cache)
        self.assertIsNotNone(config.routes[-1].compress)

    def test_nginx(self):
        proxy = nginx_cache_proxy_config("/tmp/x", 9001, 9002)
        self.assertIn("proxy_cache edge;", proxy)
        self.assertIn("proxy_cache_lock on;", proxy)
        backend = nginx_cache_backend_config("/tmp/x", 9002, "/tmp/x/www")
        self.assertIn('location /hit/ { alias /tmp/x/www/; add_header Cache-Control "max-age=3600"; }',
                      backend)
        self.assertIn('"no-store"', backend)

    def test_bodies(self):
        for make in (html_body, json_body):
            body = make(100000)
            self.assertEqual(len(body), 100000)
            self.assertEqual(body, make.__wrapped__(100000))
            # Like real pages: compressible, but not a repeated block.
            self.assertTrue(2.5 < len(body) / len(gzip.compress(body)) < 8)
