"""
Tests for L{lbproxy.policy.cors}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.cors import CorsPolicy

APP = b"https://app.example"
PREFLIGHT_VARY = (
    b"Vary",
    b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
)


class ConstructionTests(SynchronousTestCase):
    """
    Tests for L{CorsPolicy}'s checks of its arguments.
    """

    def test_wildcardWithCredentials(self) -> None:
        """
        A wildcard origin cannot share credentialed responses.
        """
        self.assertRaises(ValueError, CorsPolicy, ["*"], credentials=True)

    def test_wildcardAmongOrigins(self) -> None:
        """
        C{"*"} is alone or absent.
        """
        self.assertRaises(ValueError, CorsPolicy, ["*", "https://a.example"])

    def test_noOrigins(self) -> None:
        """
        At least one origin is needed.
        """
        self.assertRaises(ValueError, CorsPolicy, [])


class IsPreflightTests(SynchronousTestCase):
    """
    Tests for L{CorsPolicy.isPreflight}.
    """

    def test_preflight(self) -> None:
        """
        C{OPTIONS} with C{Origin} and C{Access-Control-Request-Method}, in
        any case, is a preflight.
        """
        headers = [(b"origin", APP), (b"ACCESS-CONTROL-REQUEST-METHOD", b"PUT")]
        self.assertTrue(CorsPolicy.isPreflight(b"OPTIONS", headers))

    def test_plainOptions(self) -> None:
        """
        C{OPTIONS} without either header is an ordinary request.
        """
        self.assertFalse(CorsPolicy.isPreflight(b"OPTIONS", [(b"Origin", APP)]))
        self.assertFalse(
            CorsPolicy.isPreflight(b"OPTIONS", [(b"Access-Control-Request-Method", b"PUT")])
        )
        self.assertFalse(CorsPolicy.isPreflight(b"OPTIONS", []))

    def test_otherMethod(self) -> None:
        """
        Only C{OPTIONS} (case-sensitive) can be a preflight.
        """
        headers = [(b"Origin", APP), (b"Access-Control-Request-Method", b"PUT")]
        self.assertFalse(CorsPolicy.isPreflight(b"GET", headers))
        self.assertFalse(CorsPolicy.isPreflight(b"options", headers))


class PreflightTests(SynchronousTestCase):
    """
    Tests for L{CorsPolicy.preflight}.
    """

    def setUp(self) -> None:
        self.policy = CorsPolicy(
            ["https://app.example", "http://localhost:3000"],
            methods=["GET", "POST", "PUT"],
            headers=["Content-Type", "X-Token"],
            maxAge=300,
        )

    def test_allowed(self) -> None:
        """
        An allowed preflight gets 204 with the origin echoed and the
        configured methods, headers and max age.
        """
        self.assertEqual(
            self.policy.preflight(APP, b"PUT", b"content-type, x-token"),
            (
                204,
                [
                    (b"Access-Control-Allow-Origin", APP),
                    (b"Access-Control-Allow-Methods", b"GET, POST, PUT"),
                    (b"Access-Control-Allow-Headers", b"Content-Type, X-Token"),
                    (b"Access-Control-Max-Age", b"300"),
                    PREFLIGHT_VARY,
                ],
            ),
        )

    def test_secondOrigin(self) -> None:
        """
        Each listed origin is echoed back.
        """
        status, headers = self.policy.preflight(b"http://localhost:3000", b"GET", None)
        self.assertEqual(status, 204)
        self.assertIn((b"Access-Control-Allow-Origin", b"http://localhost:3000"), headers)

    def test_noRequestHeaders(self) -> None:
        """
        A preflight asking for no headers (absent or empty list) is fine.
        """
        self.assertEqual(self.policy.preflight(APP, b"POST", None)[0], 204)
        self.assertEqual(self.policy.preflight(APP, b"POST", b"")[0], 204)
        self.assertEqual(self.policy.preflight(APP, b"POST", b" , ,")[0], 204)

    def test_originDenied(self) -> None:
        """
        An origin not listed gets 403 without any CORS header; origins
        are compared exactly.
        """
        denied = (403, [PREFLIGHT_VARY])
        for origin in [
            b"https://evil.example",
            b"https://app.example.evil.example",
            b"http://app.example",
            b"https://app.example:8443",
            b"https://APP.example",
            b"null",
            b"",
        ]:
            self.assertEqual(self.policy.preflight(origin, b"GET", None), denied, origin)

    def test_methodDenied(self) -> None:
        """
        A method not listed, or not a token, gets 403; methods are
        case-sensitive.
        """
        for method in [b"DELETE", b"put", b"", b"P T", b"GET\r\n"]:
            self.assertEqual(self.policy.preflight(APP, method, None), (403, [PREFLIGHT_VARY]))

    def test_headerDenied(self) -> None:
        """
        One header not listed (or not a token) is enough for a 403.
        """
        for requested in [b"x-other", b"content-type, x-other", b"x token", b"authorization"]:
            self.assertEqual(
                self.policy.preflight(APP, b"GET", requested), (403, [PREFLIGHT_VARY])
            )

    def test_headersCaseInsensitive(self) -> None:
        """
        Requested header names are compared case-insensitively.
        """
        self.assertEqual(self.policy.preflight(APP, b"GET", b"X-TOKEN,CONTENT-TYPE")[0], 204)

    def test_credentials(self) -> None:
        """
        With credentials, C{Access-Control-Allow-Credentials: true} is sent.
        """
        policy = CorsPolicy([APP.decode()], credentials=True)
        status, headers = policy.preflight(APP, b"GET", None)
        self.assertEqual(status, 204)
        self.assertEqual(
            headers,
            [
                (b"Access-Control-Allow-Origin", APP),
                (b"Access-Control-Allow-Credentials", b"true"),
                (b"Access-Control-Allow-Methods", b"GET, HEAD, POST"),
                (b"Access-Control-Max-Age", b"600"),
                PREFLIGHT_VARY,
            ],
        )

    def test_wildcardOrigin(self) -> None:
        """
        A wildcard policy answers C{*} to any origin.
        """
        policy = CorsPolicy(["*"], methods=["GET"])
        status, headers = policy.preflight(b"https://anyone.example", b"GET", None)
        self.assertEqual(status, 204)
        self.assertEqual(headers[0], (b"Access-Control-Allow-Origin", b"*"))
        self.assertEqual(policy.preflight(b"https://anyone.example", b"PUT", None)[0], 403)

    def test_wildcardMethods(self) -> None:
        """
        C{methods = ["*"]} allows any method and names the one asked for.
        """
        policy = CorsPolicy([APP.decode()], methods=["*"])
        status, headers = policy.preflight(APP, b"PURGE", None)
        self.assertEqual(status, 204)
        self.assertIn((b"Access-Control-Allow-Methods", b"PURGE"), headers)

    def test_wildcardHeaders(self) -> None:
        """
        C{headers = ["*"]} allows any header but C{Authorization}, which
        must be listed, and names those asked for.
        """
        policy = CorsPolicy([APP.decode()], headers=["*"])
        status, headers = policy.preflight(APP, b"GET", b"X-A, x-b")
        self.assertEqual(status, 204)
        self.assertIn((b"Access-Control-Allow-Headers", b"x-a, x-b"), headers)
        self.assertEqual(policy.preflight(APP, b"GET", b"x-a, Authorization")[0], 403)
        status, headers = policy.preflight(APP, b"GET", None)
        self.assertEqual(status, 204)
        self.assertNotIn(b"Access-Control-Allow-Headers", [name for name, _ in headers])

        listed = CorsPolicy([APP.decode()], headers=["*", "Authorization"])
        status, headers = listed.preflight(APP, b"GET", b"authorization, x-a")
        self.assertEqual(status, 204)
        self.assertIn((b"Access-Control-Allow-Headers", b"Authorization, x-a"), headers)

    def test_resultsIndependent(self) -> None:
        """
        Changing a returned list does not change the next answer.
        """
        _, headers = self.policy.preflight(APP, b"GET", None)
        headers.clear()
        self.assertEqual(len(self.policy.preflight(APP, b"GET", None)[1]), 5)


class ResponseHeadersTests(SynchronousTestCase):
    """
    Tests for L{CorsPolicy.responseHeaders} and
    L{CorsPolicy.applyResponse}.
    """

    def test_allowed(self) -> None:
        """
        An allowed origin is echoed, with exposed headers and C{Vary}.
        """
        policy = CorsPolicy([APP.decode()], exposeHeaders=["X-Total", "ETag"])
        self.assertEqual(
            policy.responseHeaders(APP),
            [
                (b"Access-Control-Allow-Origin", APP),
                (b"Access-Control-Expose-Headers", b"X-Total, ETag"),
                (b"Vary", b"Origin"),
            ],
        )

    def test_credentials(self) -> None:
        """
        With credentials, C{Access-Control-Allow-Credentials: true} is sent.
        """
        policy = CorsPolicy([APP.decode()], credentials=True)
        self.assertEqual(
            policy.responseHeaders(APP),
            [
                (b"Access-Control-Allow-Origin", APP),
                (b"Access-Control-Allow-Credentials", b"true"),
                (b"Vary", b"Origin"),
            ],
        )

    def test_notAllowed(self) -> None:
        """
        Another origin, or none, gets only C{Vary: Origin}: the response
        depends on the origin, but is not shared.
        """
        policy = CorsPolicy([APP.decode()], credentials=True)
        self.assertEqual(policy.responseHeaders(b"https://evil.example"), [(b"Vary", b"Origin")])
        self.assertEqual(policy.responseHeaders(None), [(b"Vary", b"Origin")])

    def test_wildcard(self) -> None:
        """
        A wildcard policy answers C{*} whatever the origin, without
        C{Vary}.
        """
        policy = CorsPolicy(["*"], exposeHeaders=["X-Total"])
        expected = [
            (b"Access-Control-Allow-Origin", b"*"),
            (b"Access-Control-Expose-Headers", b"X-Total"),
        ]
        self.assertEqual(policy.responseHeaders(b"https://x.example"), expected)
        self.assertEqual(policy.responseHeaders(None), expected)

    def test_allowsOrigin(self) -> None:
        """
        Listed origins, or any with a wildcard, are allowed; no origin is not.
        """
        policy = CorsPolicy([APP.decode()])
        self.assertTrue(policy.allowsOrigin(APP))
        self.assertFalse(policy.allowsOrigin(b"https://evil.example"))
        self.assertFalse(policy.allowsOrigin(None))
        self.assertTrue(CorsPolicy(["*"]).allowsOrigin(b"https://x.example"))

    def test_applyResponse(self) -> None:
        """
        The backend's own CORS headers are replaced by the policy's.
        """
        policy = CorsPolicy([APP.decode()])
        backend = [
            (b"Content-Type", b"text/plain"),
            (b"Access-Control-Allow-Origin", b"*"),
            (b"access-control-allow-credentials", b"true"),
            (b"Access-Control-Max-Age", b"99999"),
        ]
        self.assertEqual(
            policy.applyResponse(backend, APP),
            [
                (b"Content-Type", b"text/plain"),
                (b"Access-Control-Allow-Origin", APP),
                (b"Vary", b"Origin"),
            ],
        )

    def test_applyResponseVary(self) -> None:
        """
        C{Vary: Origin} is not repeated when the backend already varies
        on the origin (or on everything).
        """
        policy = CorsPolicy([APP.decode()])
        for vary in [b"Accept-Encoding, origin", b"*"]:
            result = policy.applyResponse([(b"Vary", vary)], APP)
            self.assertEqual(
                result, [(b"Vary", vary), (b"Access-Control-Allow-Origin", APP)]
            )
        result = policy.applyResponse([(b"Vary", b"Accept-Encoding")], None)
        self.assertEqual(result, [(b"Vary", b"Accept-Encoding"), (b"Vary", b"Origin")])
