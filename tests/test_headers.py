"""
Tests for L{lbproxy.policy.headers}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.headers import (
    REQUEST_DROP,
    connection_tokens,
    end_to_end,
    forwarded_request_headers,
    request_drop_names,
)


class ConnectionTokensTests(SynchronousTestCase):
    """
    Tests for L{connection_tokens}.
    """

    def test_none(self) -> None:
        """
        No Connection values give no tokens.
        """
        self.assertEqual(connection_tokens([]), set())

    def test_lowerCasedAndStripped(self) -> None:
        """
        Tokens are split on commas, stripped of whitespace and lower-cased.
        """
        self.assertEqual(
            connection_tokens([b" Keep-Alive ,X-Drop,\tCLOSE "]),
            {b"keep-alive", b"x-drop", b"close"},
        )

    def test_severalValues(self) -> None:
        """
        Tokens of several Connection headers are combined.
        """
        self.assertEqual(
            connection_tokens([b"close", b"X-A, x-b"]), {b"close", b"x-a", b"x-b"}
        )

    def test_emptyItemsIgnored(self) -> None:
        """
        Empty list items and empty values give no token.
        """
        self.assertEqual(connection_tokens([b"", b" , ,x-a,,", b" "]), {b"x-a"})

    def test_duplicatesOnce(self) -> None:
        """
        A token named twice, in any case, is one token.
        """
        self.assertEqual(connection_tokens([b"X-A, x-a", b"x-A"]), {b"x-a"})

    def test_acceptsIterator(self) -> None:
        """
        Any iterable of values works, e.g. a generator.
        """
        self.assertEqual(connection_tokens(v for v in [b"a", b"b"]), {b"a", b"b"})


class EndToEndTests(SynchronousTestCase):
    """
    Tests for L{end_to_end}.
    """

    def test_fixedHopByHopRemoved(self) -> None:
        """
        Every fixed hop-by-hop header and Content-Length is removed, in any case.
        """
        for name in [
            b"Connection",
            b"Keep-Alive",
            b"Proxy-Connection",
            b"TE",
            b"Trailer",
            b"Transfer-Encoding",
            b"Upgrade",
            b"Content-Length",
        ]:
            for variant in [name, name.lower(), name.upper()]:
                with self.subTest(name=variant):
                    self.assertEqual(
                        end_to_end([(b"Host", b"a"), (variant, b"x"), (b"Accept", b"*/*")]),
                        [(b"Host", b"a"), (b"Accept", b"*/*")],
                    )

    def test_allTogether(self) -> None:
        """
        A request with every hop-by-hop header keeps only its end-to-end headers.
        """
        self.assertEqual(
            end_to_end(
                [
                    (b"Host", b"example.com"),
                    (b"Connection", b"keep-alive, Upgrade"),
                    (b"Keep-Alive", b"timeout=5"),
                    (b"Proxy-Connection", b"keep-alive"),
                    (b"TE", b"trailers"),
                    (b"Trailer", b"X-Checksum"),
                    (b"Transfer-Encoding", b"chunked"),
                    (b"Upgrade", b"websocket"),
                    (b"Content-Length", b"10"),
                    (b"Content-Type", b"text/plain"),
                ]
            ),
            [(b"Host", b"example.com"), (b"Content-Type", b"text/plain")],
        )

    def test_proxyPrefixRemoved(self) -> None:
        """
        Any header whose name starts with Proxy- is removed, in any case.
        """
        self.assertEqual(
            end_to_end(
                [
                    (b"Proxy-Authorization", b"Basic eA=="),
                    (b"proxy-authenticate", b"Basic"),
                    (b"PROXY-Whatever", b"x"),
                    (b"Proxy", b"not a prefix match"),
                    (b"X-Proxy-Id", b"kept"),
                ]
            ),
            [(b"Proxy", b"not a prefix match"), (b"X-Proxy-Id", b"kept")],
        )

    def test_namedByConnectionRemoved(self) -> None:
        """
        Headers named by Connection are removed, whatever the case of name or token.
        """
        self.assertEqual(
            end_to_end(
                [
                    (b"x-secret", b"1"),
                    (b"Connection", b"X-Secret"),
                    (b"X-SECRET", b"2"),
                    (b"X-Kept", b"3"),
                ]
            ),
            [(b"X-Kept", b"3")],
        )

    def test_namedByConnectionBeforeOrAfter(self) -> None:
        """
        A header is removed whether it comes before or after the Connection header naming it.
        """
        self.assertEqual(
            end_to_end(
                [(b"X-A", b"1"), (b"Connection", b"x-a, x-b"), (b"X-B", b"2"), (b"X-C", b"3")]
            ),
            [(b"X-C", b"3")],
        )

    def test_multipleConnectionHeaders(self) -> None:
        """
        Tokens of every Connection header count.
        """
        self.assertEqual(
            end_to_end(
                [
                    (b"Connection", b"x-a"),
                    (b"X-A", b"1"),
                    (b"X-B", b"2"),
                    (b"connection", b"X-B"),
                    (b"X-C", b"3"),
                ]
            ),
            [(b"X-C", b"3")],
        )

    def test_tokensWithSpaces(self) -> None:
        """
        Spaces and tabs around Connection tokens are ignored.
        """
        self.assertEqual(
            end_to_end(
                [
                    (b"Connection", b"  x-a ,\tx-b\t, ,"),
                    (b"X-A", b"1"),
                    (b"X-B", b"2"),
                    (b"X-C", b"3"),
                ]
            ),
            [(b"X-C", b"3")],
        )

    def test_orderPreserved(self) -> None:
        """
        Kept headers come out in the order they came in, names and values untouched.
        """
        headers = [
            (b"Host", b"a.example"),
            (b"x-Z", b"  spaced  "),
            (b"Accept", b"*/*"),
            (b"Connection", b"close"),
            (b"A-First", b"1"),
            (b"Cookie", b"k=v"),
        ]
        self.assertEqual(
            end_to_end(headers),
            [
                (b"Host", b"a.example"),
                (b"x-Z", b"  spaced  "),
                (b"Accept", b"*/*"),
                (b"A-First", b"1"),
                (b"Cookie", b"k=v"),
            ],
        )

    def test_duplicatesKept(self) -> None:
        """
        Repeated end-to-end headers such as Set-Cookie are all kept, in order.
        """
        headers = [
            (b"Set-Cookie", b"a=1"),
            (b"Content-Length", b"0"),
            (b"Set-Cookie", b"b=2"),
            (b"set-cookie", b"c=3"),
        ]
        self.assertEqual(
            end_to_end(headers),
            [(b"Set-Cookie", b"a=1"), (b"Set-Cookie", b"b=2"), (b"set-cookie", b"c=3")],
        )

    def test_empty(self) -> None:
        """
        No headers give no headers.
        """
        self.assertEqual(end_to_end([]), [])

    def test_acceptsIterator(self) -> None:
        """
        A one-shot iterator works: headers before a later Connection header are removed.
        """
        headers = iter([(b"X-A", b"1"), (b"Connection", b"x-a"), (b"X-B", b"2")])
        self.assertEqual(end_to_end(headers), [(b"X-B", b"2")])

    def test_inputNotModified(self) -> None:
        """
        The list given is left as it was.
        """
        headers = [(b"Connection", b"close"), (b"X-A", b"1")]
        end_to_end(headers)
        self.assertEqual(headers, [(b"Connection", b"close"), (b"X-A", b"1")])


class RequestDropNamesTests(SynchronousTestCase):
    """
    Tests for L{request_drop_names}.
    """

    def test_noConnection(self) -> None:
        """
        Without C{Connection}: the fixed hop-by-hop and framing fields, and
        C{Expect}.
        """
        names = request_drop_names(None)
        self.assertIs(names, REQUEST_DROP)
        for name in [b"connection", b"keep-alive", b"proxy-connection", b"te", b"trailer",
                     b"transfer-encoding", b"upgrade", b"content-length", b"expect"]:
            self.assertIn(name, names)
        self.assertNotIn(b"host", names)

    def test_common(self) -> None:
        """
        The usual values cost no parsing, and mean what they say.
        """
        self.assertIs(request_drop_names([b"keep-alive"]), REQUEST_DROP)
        self.assertIs(request_drop_names([b"Keep-Alive"]), REQUEST_DROP)
        self.assertEqual(request_drop_names([b"close"]), REQUEST_DROP | {b"close"})
        self.assertEqual(request_drop_names([b"CLOSE"]), REQUEST_DROP | {b"close"})

    def test_named(self) -> None:
        """
        Every name listed in every C{Connection} field, lower-cased; never
        C{Host}.
        """
        self.assertEqual(
            request_drop_names([b"keep-alive, X-Private", b" X-Request-Id ,Host"]),
            REQUEST_DROP | {b"x-private", b"x-request-id"},
        )


class ForwardedRequestHeadersTests(SynchronousTestCase):
    """
    Tests for L{forwarded_request_headers}.
    """

    def test_added(self) -> None:
        """
        Without X-Forwarded-* headers, the three are added after the others.
        """
        self.assertEqual(
            forwarded_request_headers(
                [(b"Host", b"www.example.com"), (b"Accept", b"*/*")],
                b"10.0.0.1",
                b"http",
                b"www.example.com",
            ),
            [
                (b"Host", b"www.example.com"),
                (b"Accept", b"*/*"),
                (b"X-Forwarded-For", b"10.0.0.1"),
                (b"X-Forwarded-Proto", b"http"),
                (b"X-Forwarded-Host", b"www.example.com"),
            ],
        )

    def test_forwardedForAppended(self) -> None:
        """
        From a trusted proxy, the peer address is appended to an existing
        X-Forwarded-For.
        """
        headers = forwarded_request_headers(
            [(b"X-Forwarded-For", b"1.2.3.4")], b"10.0.0.1", b"http", None, trusted=True
        )
        self.assertEqual(
            [v for n, v in headers if n.lower() == b"x-forwarded-for"],
            [b"1.2.3.4, 10.0.0.1"],
        )

    def test_severalForwardedForCombined(self) -> None:
        """
        Several incoming X-Forwarded-For headers are combined in order into one, then the client.
        """
        headers = forwarded_request_headers(
            [
                (b"X-Forwarded-For", b"1.1.1.1, 2.2.2.2"),
                (b"Accept", b"*/*"),
                (b"x-forwarded-for", b"3.3.3.3"),
            ],
            b"10.0.0.1",
            b"https",
            b"h",
            trusted=True,
        )
        self.assertEqual(
            headers,
            [
                (b"Accept", b"*/*"),
                (b"X-Forwarded-For", b"1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1"),
                (b"X-Forwarded-Proto", b"https"),
                (b"X-Forwarded-Host", b"h"),
            ],
        )

    def test_protoAndHostReplaced(self) -> None:
        """
        Incoming X-Forwarded-Proto/-Host (any case, repeated) are replaced, not duplicated.
        """
        headers = forwarded_request_headers(
            [
                (b"X-Forwarded-Proto", b"https"),
                (b"x-forwarded-host", b"evil.example"),
                (b"X-FORWARDED-PROTO", b"gopher"),
                (b"Host", b"good.example"),
            ],
            b"10.0.0.1",
            b"http",
            b"good.example",
        )
        self.assertEqual(
            [(n, v) for n, v in headers if n.lower().startswith(b"x-forwarded-")],
            [
                (b"X-Forwarded-For", b"10.0.0.1"),
                (b"X-Forwarded-Proto", b"http"),
                (b"X-Forwarded-Host", b"good.example"),
            ],
        )

    def test_hostUnchanged(self) -> None:
        """
        Host is passed through unchanged, in place, whatever host argument is given.
        """
        headers = forwarded_request_headers(
            [(b"Accept", b"*/*"), (b"hOsT", b"Mixed.Example:8080"), (b"X-A", b"1")],
            b"10.0.0.1",
            b"http",
            b"mixed.example",
        )
        self.assertEqual(
            headers[:3],
            [(b"Accept", b"*/*"), (b"hOsT", b"Mixed.Example:8080"), (b"X-A", b"1")],
        )

    def test_noHost(self) -> None:
        """
        With host None no X-Forwarded-Host is sent, and an incoming one is still dropped.
        """
        headers = forwarded_request_headers(
            [(b"X-Forwarded-Host", b"spoofed")], b"10.0.0.1", b"http", None
        )
        self.assertEqual(
            headers,
            [(b"X-Forwarded-For", b"10.0.0.1"), (b"X-Forwarded-Proto", b"http")],
        )

    def test_inputIsEndToEnd(self) -> None:
        """
        The pairs are forwarded as given: the client's hop-by-hop fields
        were dropped when its headers were scanned, and what lbproxy added
        since (header rules, the request id) is not filtered again.
        """
        headers = forwarded_request_headers(
            [(b"X-Private", b"operator"), (b"Cookie", b"a=1")],
            b"10.0.0.1",
            b"http",
            None,
        )
        self.assertEqual(
            headers,
            [
                (b"X-Private", b"operator"),
                (b"Cookie", b"a=1"),
                (b"X-Forwarded-For", b"10.0.0.1"),
                (b"X-Forwarded-Proto", b"http"),
            ],
        )

    def test_duplicatesKept(self) -> None:
        """
        Repeated end-to-end request headers are kept in order.
        """
        headers = forwarded_request_headers(
            [(b"Cookie", b"a=1"), (b"Cookie", b"b=2")], b"::1", b"http", None
        )
        self.assertEqual(headers[:2], [(b"Cookie", b"a=1"), (b"Cookie", b"b=2")])
        self.assertEqual(headers[2], (b"X-Forwarded-For", b"::1"))


class UntrustedPeerTests(SynchronousTestCase):
    """
    What an untrusted client says about where a request came from is
    replaced, not appended.
    """

    def test_replaced(self) -> None:
        """
        Incoming X-Forwarded-For/-Proto/-Host and Forwarded are dropped and
        set anew from what lbproxy saw.
        """
        headers = forwarded_request_headers(
            [
                (b"X-Forwarded-For", b"6.6.6.6"),
                (b"X-Forwarded-Proto", b"https"),
                (b"X-Forwarded-Host", b"evil"),
                (b"Forwarded", b"for=6.6.6.6"),
            ],
            b"10.0.0.1",
            b"http",
            b"www.mango.com",
        )
        self.assertEqual(
            headers,
            [
                (b"X-Forwarded-For", b"10.0.0.1"),
                (b"X-Forwarded-Proto", b"http"),
                (b"X-Forwarded-Host", b"www.mango.com"),
            ],
        )

    def test_trustedKeepsProtoAndHost(self) -> None:
        """
        From a trusted proxy, its X-Forwarded-Proto/-Host and Forwarded pass.
        """
        headers = forwarded_request_headers(
            [(b"X-Forwarded-Proto", b"https"), (b"X-Forwarded-Host", b"a"), (b"Forwarded", b"for=1")],
            b"10.0.0.1",
            b"http",
            b"b",
            trusted=True,
        )
        self.assertEqual(
            headers,
            [
                (b"X-Forwarded-Proto", b"https"),
                (b"X-Forwarded-Host", b"a"),
                (b"Forwarded", b"for=1"),
                (b"X-Forwarded-For", b"10.0.0.1"),
            ],
        )
