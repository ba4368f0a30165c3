"""
Tests for a reload's listener changes in a single process (L{lbproxy.app.reload}
with two L{lbproxy.app.listeners.ListenerSet}s): plain and TLS listeners are
opened and closed together, all or nothing.
"""

from __future__ import annotations

from twisted.application.service import MultiService, Service
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.listeners import ListenerSet
from lbproxy.app.reload import Reloader, all_listeners, parse_text, restart_only
from lbproxy.testing import ProxyHarness
from tests.test_reload import FakeEndpoint

TLS = """
[server]
listen = {plain}
access_log = false

[tls]
listen = {tls}
hsts = "max-age=60"

[[tls.certificates]]
cert = "site.pem"
key = "site.key"

[pools.web]
targets = ["10.0.0.1:80"]

[[routes]]
path = "/"
pool = "web"
"""


def tlsText(plain='"tcp:8080"', tls='"tcp:8443"', hsts="max-age=60") -> str:
    return TLS.format(plain=plain, tls=tls).replace("max-age=60", hsts)


class TLSListenerTests(SynchronousTestCase):
    def setUp(self):
        self.text = tlsText()
        self.harness = ProxyHarness(parse_text(self.text, "lbproxy.toml"))
        self.core = self.harness.core
        self.core.listeners = ("tcp:8080", "tcp:8443")
        self.ports = []
        self.refuse = set()
        self.parent = MultiService()
        self.parent.startService()
        self.plainFactory, self.tlsFactory = object(), object()
        self.served = {}

        def endpointFor(factory):
            def endpoint(description):
                self.served[description] = factory
                return FakeEndpoint(self.ports, description, self.refuse)
            return endpoint

        self.plain = ListenerSet(self.parent, endpointFor(self.plainFactory), self.plainFactory)
        self.tls = ListenerSet(
            self.parent, endpointFor(self.tlsFactory), self.tlsFactory, key="tls.listen"
        )
        for group, description in ((self.plain, "tcp:8080"), (self.tls, "tcp:8443")):
            self.ports.append(description)
            service = Service()
            service.setServiceParent(self.parent)
            service.stopService = (lambda d: lambda: self.ports.remove(d))(description)
            group.register(description, service)
        self.reloader = Reloader(
            self.core, self.harness.reactor, "lbproxy.toml", listeners=self.plain,
            tlsListeners=self.tls, read=lambda path: self.text,
        )

    def reload(self, text):
        self.text = text
        return self.successResultOf(self.reloader.reload("test"))

    def test_addAndRemove(self):
        """
        A reload that moves the TLS listener opens the new one with the
        TLS listeners' factory and closes the old one; the plain listener
        stays.
        """
        outcome = self.reload(tlsText(tls='"tcp:9443"'))
        self.assertTrue(outcome["applied"], outcome)
        self.assertEqual(outcome["listeners_opened"], ["tcp:9443"])
        self.assertEqual(outcome["listeners_closed"], ["tcp:8443"])
        self.assertEqual(sorted(self.ports), ["tcp:8080", "tcp:9443"])
        self.assertIs(self.served["tcp:9443"], self.tlsFactory)
        self.assertEqual(self.tls.descriptions(), ["tcp:9443"])
        self.assertEqual(self.core.listeners, ("tcp:8080", "tcp:9443"))
        self.assertEqual(outcome["restart_needed"], [])

    def test_plainAndTLSTogether(self):
        """
        Plain and TLS listeners added by one reload are opened together,
        each set with its own factory.
        """
        outcome = self.reload(tlsText(plain='["tcp:8080", "tcp:8081"]',
                                      tls='["tcp:8443", "tcp:8444"]'))
        self.assertEqual(outcome["listeners_opened"], ["tcp:8081", "tcp:8444"])
        self.assertIs(self.served["tcp:8081"], self.plainFactory)
        self.assertIs(self.served["tcp:8444"], self.tlsFactory)
        self.assertEqual(self.core.listeners, ("tcp:8080", "tcp:8081", "tcp:8443", "tcp:8444"))

    def test_tlsFailsUndoesPlain(self):
        """
        A TLS listener that cannot be opened rejects the reload, naming
        C{tls.listen}; the plain listener it opened first is closed again
        and nothing is applied.
        """
        runtime = self.core.runtime
        self.refuse.add("tcp:8444")
        outcome = self.reload(tlsText(plain='["tcp:8080", "tcp:8081"]',
                                      tls='["tcp:9443", "tcp:8444"]'))
        self.assertFalse(outcome["applied"])
        self.assertEqual(outcome["key"], "tls.listen")
        self.assertIn("cannot listen on tcp:8444: Address already in use", outcome["error"])
        self.assertEqual(sorted(self.ports), ["tcp:8080", "tcp:8443"])
        self.assertEqual(self.plain.descriptions(), ["tcp:8080"])
        self.assertEqual(self.tls.descriptions(), ["tcp:8443"])
        self.assertIs(self.core.runtime, runtime)

    def test_plainFailsOpensNoTLS(self):
        """
        A plain listener that fails rejects the reload before any TLS one
        is opened.
        """
        self.refuse.add("tcp:8081")
        outcome = self.reload(tlsText(plain='["tcp:8080", "tcp:8081"]', tls='"tcp:9443"'))
        self.assertEqual(outcome["key"], "server.listen")
        self.assertEqual(sorted(self.ports), ["tcp:8080", "tcp:8443"])

    def test_otherTLSKeysRestartOnly(self):
        """
        Other C{[tls]} keys still need a restart, and are named one by one;
        adding or removing C{[tls]} is named C{tls}.
        """
        old = parse_text(tlsText(), "a.toml")
        self.assertEqual(restart_only(old, parse_text(tlsText(tls='"tcp:9443"'), "a.toml")), [])
        self.assertEqual(
            restart_only(old, parse_text(tlsText(hsts="max-age=99"), "a.toml")), ["tls.hsts"]
        )
        plain = parse_text(tlsText().split("[tls]")[0] + TLS.split("key = \"site.key\"")[1],
                           "a.toml")
        self.assertIsNone(plain.tls)
        self.assertEqual(restart_only(old, plain), ["tls"])
        self.assertEqual(all_listeners(old), ["tcp:8080", "tcp:8443"])
        self.assertEqual(all_listeners(plain), ["tcp:8080"])

    def test_removingTLSKeepsItsListeners(self):
        """
        A file without C{[tls]} does not close the TLS listeners: that
        change is restart-only.
        """
        plain = tlsText().split("[tls]")[0] + TLS.split('key = "site.key"')[1]
        outcome = self.reload(plain)
        self.assertTrue(outcome["applied"])
        self.assertEqual(outcome["restart_needed"], ["tls"])
        self.assertEqual(sorted(self.ports), ["tcp:8080", "tcp:8443"])
        self.assertEqual(self.core.listeners, ("tcp:8080", "tcp:8443"))
