# -*- test-case-name: tests.test_relay -*-
"""
Byte relays: two connections joined with flow control both ways.

L{lbproxy.relay.pipe} is the one relay; WebSocket and other HTTP upgrades
(L{lbproxy.terminals.upgrade}), C{[[tcp]]} services (L{lbproxy.relay.tcp})
and TLS passthrough by SNI (L{lbproxy.tls.passthrough}) all use it.
"""
