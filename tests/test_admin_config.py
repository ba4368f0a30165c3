"""
Tests for the C{[admin]} table (L{lbproxy.config.admin}), the C{[server]}
keys of live reconfiguration, and the admin listener the service starts.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.admin.root import AdminRoot
from lbproxy.config import ConfigError, parse_config
from lbproxy.config.admin import DEFAULT_ADMIN_LISTEN, loopback_only

from tests.test_tap import started_service

TOKEN = "0123456789abcdef-token"
BASE = {"pools": {"web": {"targets": ["10.0.0.1:80"]}}}


def parse(admin=None, path="test.toml", **server):
    data = dict(BASE)
    if admin is not None:
        data["admin"] = admin
    if server:
        data["server"] = server
    return parse_config(data, path)


class AdminConfigTests(SynchronousTestCase):
    def fails(self, key, reason, admin=None, **server):
        with self.assertRaises(ConfigError) as caught:
            parse(admin, **server)
        self.assertEqual(caught.exception.key, key)
        self.assertIn(reason, caught.exception.reason)

    def test_off(self):
        self.assertIsNone(parse().admin)

    def test_token(self):
        admin = parse({"token": TOKEN}).admin
        self.assertEqual((admin.listen, admin.token, admin.token_file),
                         (DEFAULT_ADMIN_LISTEN, TOKEN, None))
        self.assertNotIn(TOKEN, repr(admin))

    def test_protectReads(self):
        self.assertFalse(parse({"token": TOKEN}).admin.protect_reads)
        self.assertTrue(parse({"token": TOKEN, "protect_reads": True}).admin.protect_reads)
        self.fails("admin.protect_reads", "boolean", {"token": TOKEN, "protect_reads": "yes"})

    def test_tokenFile(self):
        """
        C{token_file} is relative to the configuration file and read now;
        surrounding white space is not part of the token.
        """
        directory = self.mktemp()
        os.mkdir(directory)
        with open(os.path.join(directory, "admin.token"), "w") as f:
            f.write(TOKEN + "\n")
        admin = parse({"token_file": "admin.token"},
                      path=os.path.join(directory, "lbproxy.toml")).admin
        self.assertEqual(admin.token, TOKEN)
        self.assertEqual(admin.token_file, os.path.join(directory, "admin.token"))

    def test_tokenFileMissing(self):
        self.fails("admin.token_file", "file not found", {"token_file": "/nonexistent/x"})

    def test_tokenRequired(self):
        self.fails("admin.token_file", "required", {"listen": "tcp:9901"})

    def test_tokenAndFile(self):
        self.fails("admin.token", "not both", {"token": TOKEN, "token_file": "x"})

    def test_tokenShort(self):
        self.fails("admin.token", "at least 16", {"token": "short"})

    def test_tokenSpaces(self):
        self.fails("admin.token", "without spaces", {"token": "a b" * 10})

    def test_unknownKey(self):
        self.fails("admin.tokn", "unknown key", {"token": TOKEN, "tokn": 1})

    def test_badListen(self):
        self.fails("admin.listen", "invalid endpoint", {"token": TOKEN, "listen": "tcp:x"})

    def test_listenShared(self):
        self.fails("admin.listen", "already used by server.listen[0]",
                   {"token": TOKEN, "listen": "tcp:8080"}, listen="tcp:8080")

    def test_loopbackOnly(self):
        """
        A TCP listener without an interface listens on loopback only.
        """
        self.assertEqual(loopback_only("tcp:9901"), "tcp:9901:interface=127.0.0.1")
        self.assertEqual(loopback_only("tcp6:9901"), "tcp6:9901:interface=\\:\\:1")
        self.assertEqual(loopback_only("tcp:9901:interface=0.0.0.0"),
                         "tcp:9901:interface=0.0.0.0")
        self.assertEqual(loopback_only("unix:/run/admin.sock"), "unix:/run/admin.sock")
        self.assertEqual(parse({"token": TOKEN, "listen": "tcp:9000"}).admin.listen,
                         "tcp:9000:interface=127.0.0.1")


class ServerKeysTests(SynchronousTestCase):
    def test_defaults(self):
        server = parse().server
        self.assertEqual((server.drain_timeout, server.watch), (30.0, False))

    def test_set(self):
        server = parse(drain_timeout=5, watch=True).server
        self.assertEqual((server.drain_timeout, server.watch), (5.0, True))

    def test_bad(self):
        with self.assertRaises(ConfigError) as caught:
            parse(drain_timeout=-1)
        self.assertEqual(caught.exception.key, "server.drain_timeout")
        with self.assertRaises(ConfigError) as caught:
            parse(watch="yes")
        self.assertEqual(caught.exception.key, "server.watch")


ADMIN = """
[server]
listen = "tcp:18080:interface=127.0.0.1"
access_log = false

[admin]
listen = "tcp:19901"
token = "%s"

[pools.web]
targets = ["127.0.0.1:8081"]
""" % (TOKEN,)


class ServiceTests(SynchronousTestCase):
    def test_adminListens(self):
        """
        With C{[admin]}, the service listens on its (loopback) address with
        the admin site; without, it does not.
        """
        service, reactor = started_service(self, ADMIN)
        servers = {port: (factory, interface) for port, factory, _, interface in reactor.tcpServers}
        factory, interface = servers[19901]
        self.assertIsInstance(factory.resource, AdminRoot)
        self.assertEqual(interface, "127.0.0.1")
        self.assertEqual(service.core.listeners, ("tcp:18080:interface=127.0.0.1",))
        self.successResultOf(service.stopService())

    def test_noAdmin(self):
        service, reactor = started_service(self, ADMIN.replace("[admin]", "[x]").split("[x]")[0]
                                           + "[pools.web]\ntargets = [\"127.0.0.1:8081\"]\n")
        self.assertEqual([port for port, _, _, _ in reactor.tcpServers], [18080])
        self.successResultOf(service.stopService())

    def test_reloadTriggers(self):
        """
        The admin API's reload is the service's reloader; with C{watch}, a
        file watch runs it on changes.
        """
        from lbproxy.app.watch import FileWatch

        service, reactor = started_service(self, ADMIN)
        self.assertIs(service.core.reloader, service.reloader)
        self.assertEqual([s for s in service if isinstance(s, FileWatch)], [])
        self.successResultOf(service.stopService())
        watched = ADMIN.replace("access_log = false", "access_log = false\nwatch = true")
        service, reactor = started_service(self, watched)
        [watch] = [s for s in service if isinstance(s, FileWatch)]
        self.assertTrue(watch.running)
        self.successResultOf(service.stopService())
