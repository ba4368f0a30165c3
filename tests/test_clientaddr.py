"""
Tests for L{lbproxy.policy.clientaddr}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.clientaddr import MAX_HOPS, ClientAddressResolver

TRUSTED = ["10.0.0.0/8", "2001:db8:ffff::/48"]


class XForwardedForTests(SynchronousTestCase):
    """
    Tests for L{ClientAddressResolver} reading C{X-Forwarded-For}.
    """

    def setUp(self) -> None:
        self.resolver = ClientAddressResolver(TRUSTED)

    def resolve(self, peer: str, *values: bytes) -> str:
        return self.resolver.resolve(peer, list(values), [])

    def test_untrustedPeer(self) -> None:
        """
        A peer that is not trusted is the client, whatever it claims.
        """
        self.assertEqual(self.resolve("192.0.2.1", b"203.0.113.9"), "192.0.2.1")

    def test_noTrustedProxies(self) -> None:
        """
        Without trusted proxies the peer is always the client.
        """
        resolver = ClientAddressResolver([])
        self.assertEqual(resolver.resolve("10.0.0.1", [b"203.0.113.9"], []), "10.0.0.1")
        self.assertFalse(resolver.isTrusted("10.0.0.1"))

    def test_trustedPeer(self) -> None:
        """
        A trusted peer's X-Forwarded-For names the client.
        """
        self.assertEqual(self.resolve("10.0.0.1", b"203.0.113.9"), "203.0.113.9")

    def test_spoofedEntries(self) -> None:
        """
        Entries a client wrote itself, left of the one the trusted proxy
        appended, are ignored.
        """
        self.assertEqual(
            self.resolve("10.0.0.1", b"1.1.1.1, 10.0.0.7, 203.0.113.9"), "203.0.113.9"
        )
        self.assertEqual(
            self.resolve("10.0.0.1", b"10.9.9.9", b"203.0.113.9"), "203.0.113.9"
        )

    def test_trustedChain(self) -> None:
        """
        Trusted proxies on the right are skipped.
        """
        self.assertEqual(
            self.resolve("10.0.0.1", b"6.6.6.6, 203.0.113.9, 10.0.0.3", b"10.0.0.2"),
            "203.0.113.9",
        )

    def test_allTrusted(self) -> None:
        """
        With only trusted addresses, the leftmost is the client.
        """
        self.assertEqual(self.resolve("10.0.0.1", b"10.0.0.3, 10.0.0.2"), "10.0.0.3")

    def test_noHeader(self) -> None:
        """
        Without entries, the trusted peer is the client.
        """
        self.assertEqual(self.resolve("10.0.0.1"), "10.0.0.1")
        self.assertEqual(self.resolve("10.0.0.1", b""), "10.0.0.1")
        self.assertEqual(self.resolve("10.0.0.1", b" , "), "10.0.0.1")

    def test_emptyItemsSkipped(self) -> None:
        """
        Empty list items are skipped.
        """
        self.assertEqual(self.resolve("10.0.0.1", b"203.0.113.9,, ,"), "203.0.113.9")

    def test_malformedStops(self) -> None:
        """
        A malformed entry ends the walk at the last good address.
        """
        self.assertEqual(
            self.resolve("10.0.0.1", b"203.0.113.9, garbage, 10.0.0.2"), "10.0.0.2"
        )
        for bad in [b"garbage", b"unknown", b"999.1.1.1", b"1.2.3.4:99999", b"[::1",
                    b"[1.2.3.4]", b"::1]", b"fe80::1%eth0", b"1.2.3.4 5.6.7.8",
                    b"\xff\xfe", b"1.2.3.4:", b"[::1]x"]:
            self.assertEqual(self.resolve("10.0.0.1", b"203.0.113.9, " + bad), "10.0.0.1", bad)

    def test_forms(self) -> None:
        """
        Addresses may come with ports and IPv6 in brackets.
        """
        for entry, expected in [
            (b"203.0.113.9:4711", "203.0.113.9"),
            (b"2001:db8::1", "2001:db8::1"),
            (b"[2001:db8::1]", "2001:db8::1"),
            (b"[2001:DB8:0::1]:4711", "2001:db8::1"),
            (b"::ffff:203.0.113.9", "203.0.113.9"),
        ]:
            self.assertEqual(self.resolve("10.0.0.1", entry), expected, entry)

    def test_ipv6Proxies(self) -> None:
        """
        IPv6 trusted proxies and clients work alike.
        """
        self.assertEqual(
            self.resolve("2001:db8:ffff::1", b"2001:db8::5, 2001:db8:ffff::2"), "2001:db8::5"
        )

    def test_mappedPeer(self) -> None:
        """
        A peer seen as IPv4-mapped IPv6 is trusted by its IPv4 address, and
        returned as IPv4.
        """
        self.assertEqual(self.resolve("::ffff:10.0.0.1", b"203.0.113.9"), "203.0.113.9")
        self.assertEqual(self.resolve("::ffff:192.0.2.1", b"203.0.113.9"), "192.0.2.1")

    def test_unparsablePeer(self) -> None:
        """
        A peer that is no address is returned as it is.
        """
        self.assertEqual(self.resolve("", b"203.0.113.9"), "")

    def test_forwardedIgnored(self) -> None:
        """
        In X-Forwarded-For mode, C{Forwarded} is the client's to write and
        is ignored.
        """
        self.assertEqual(
            self.resolver.resolve("10.0.0.1", [], [b"for=203.0.113.9"]), "10.0.0.1"
        )

    def test_hopsBounded(self) -> None:
        """
        The walk stops after L{MAX_HOPS} entries.
        """
        chain = b", ".join([b"203.0.113.9"] + [b"10.0.0.2"] * (MAX_HOPS + 5))
        self.assertEqual(self.resolve("10.0.0.1", chain), "10.0.0.2")
        chain = b", ".join([b"203.0.113.9"] + [b"10.0.0.2"] * (MAX_HOPS - 1))
        self.assertEqual(self.resolve("10.0.0.1", chain), "203.0.113.9")

    def test_badHeaderName(self) -> None:
        """
        Only the two forwarding headers can be believed.
        """
        self.assertRaises(ValueError, ClientAddressResolver, TRUSTED, "x-real-ip")


class ForwardedTests(SynchronousTestCase):
    """
    Tests for L{ClientAddressResolver} reading RFC 7239 C{Forwarded}.
    """

    def setUp(self) -> None:
        self.resolver = ClientAddressResolver(TRUSTED, header="forwarded")

    def resolve(self, *values: bytes) -> str:
        return self.resolver.resolve("10.0.0.1", [], list(values))

    def test_simple(self) -> None:
        """
        A plain C{for} parameter names the client.
        """
        self.assertEqual(self.resolve(b"for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60")

    def test_quotedIPv6(self) -> None:
        """
        Quoted IPv6 addresses, with or without port, are read.
        """
        self.assertEqual(self.resolve(b'For="[2001:db8:cafe::17]:4711"'), "2001:db8:cafe::17")
        self.assertEqual(self.resolve(b'for="[2001:db8:cafe::17]"'), "2001:db8:cafe::17")

    def test_quotedIPv4WithPort(self) -> None:
        """
        A quoted IPv4 address with a port is read.
        """
        self.assertEqual(self.resolve(b'for="192.0.2.60:4711"'), "192.0.2.60")

    def test_chain(self) -> None:
        """
        Elements are walked right to left, across header lines.
        """
        self.assertEqual(
            self.resolve(b"for=6.6.6.6, for=192.0.2.60", b'for=10.0.0.3;by="[::1]"'),
            "192.0.2.60",
        )

    def test_quotedSeparators(self) -> None:
        """
        Commas and semicolons inside quoted strings separate nothing.
        """
        self.assertEqual(
            self.resolve(b'for=192.0.2.60;ext="a, b; c=\\"d\\"", for=10.0.0.2'),
            "192.0.2.60",
        )

    def test_whitespace(self) -> None:
        """
        Whitespace around pairs and elements is ignored.
        """
        self.assertEqual(self.resolve(b" for=192.0.2.60 ; proto=https ,  for=10.0.0.2 "),
                         "192.0.2.60")

    def test_emptyElements(self) -> None:
        """
        Empty pairs are ignored; an element without C{for} stops the walk.
        """
        self.assertEqual(self.resolve(b"for=192.0.2.60;;proto=http"), "192.0.2.60")
        self.assertEqual(self.resolve(b"for=192.0.2.60, proto=http"), "10.0.0.1")

    def test_unusableStops(self) -> None:
        """
        C{unknown}, obfuscated identifiers and malformed elements stop the
        walk at the last good address.
        """
        for value in [
            b"for=unknown",
            b"for=_hidden",
            b'for="_hidden:_port"',
            b'for="2001:db8::1"',
            b"for=192.0.2.60:80",
            b'for="[2001:db8::1"',
            b'for="192.0.2.60:99999"',
            b"for=192.0.2.60;for=192.0.2.61",
            b'for="192.0.2.60',
            b"for=",
            b"=192.0.2.60",
            b"for 192.0.2.60",
            b'for="\x01"',
            b"for=192.0.2.60 x",
        ]:
            self.assertEqual(self.resolve(value, b"for=10.0.0.2"), "10.0.0.2", value)
            self.assertEqual(self.resolve(b"for=10.0.0.2", value), "10.0.0.1", value)
        self.assertEqual(
            self.resolve(b"for=192.0.2.1, for=unknown, for=10.0.0.2"), "10.0.0.2"
        )

    def test_xffIgnored(self) -> None:
        """
        In C{Forwarded} mode, C{X-Forwarded-For} is ignored.
        """
        self.assertEqual(self.resolver.resolve("10.0.0.1", [b"203.0.113.9"], []), "10.0.0.1")
