"""
The edge policies wired into the proxy, in memory: rate limits, access
rules, basic auth, CORS preflights, header rules, request ids and trusted
proxies.
"""

from __future__ import annotations

import base64

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.testing import ProxyHarness

SECRET_HASH = (
    "pbkdf2_sha256$10000$MDEyMzQ1Njc4OWFiY2RlZg==$6umsHhz0yhb+YIJ/FUgCrsOB+tK+gGdB+tvI2KPIHns="
)

CONFIG = {
    "server": {"trusted_proxies": ["10.9.0.0/16"]},
    "rate_limit": {"rate": 1.0, "burst": 2},
    "access": {"deny": ["192.0.2.66"], "blocked_paths": ["/.git"]},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [
        {
            "path": "/admin",
            "pool": "web",
            "access": {
                "allow": ["192.0.2.0/24"],
                "methods": ["GET"],
                "basic_auth": {"realm": "staff", "users": {"alice": SECRET_HASH}},
            },
        },
        {
            "path": "/api",
            "pool": "web",
            "cors": {"origins": ["https://app.example"], "methods": ["GET", "PUT"],
                     "headers": ["Content-Type"], "credentials": True},
            "headers": {
                "request_set": {"X-Client": "{client_ip}"},
                "request_remove": ["X-Debug"],
                "response_set": {"X-Served-By": "{target}"},
                "response_remove": ["Server"],
            },
            "rate_limit": {"rate": 100.0, "burst": 100},
        },
        {"pool": "web"},
    ],
}

# Connection: close, so that every forwarded request opens a connection.
OK = b"HTTP/1.1 200 OK\r\nServer: backend\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"


def basic(user: str, password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


class PolicyTestCase(SynchronousTestCase):
    def setUp(self):
        self.proxy = ProxyHarness(CONFIG)

    def get(self, path: bytes, address: str = "192.0.2.1", headers: bytes = b"",
            method: bytes = b"GET", answer: bytes = OK):
        """
        One request; if it reaches a backend, the backend answers C{answer}.

        @return: (response bytes, what the backend received or None)
        """
        client = self.proxy.client(address=address)
        client.send(method + b" " + path + b" HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
        received = None
        if self.proxy.pending():
            backend = self.proxy.accept()
            received = backend.received()
            backend.respond(answer)
        return client.received(), received


class RateLimitTests(PolicyTestCase):
    def test_burstThen429(self):
        """
        A client gets its burst, then 429 with Retry-After; another client
        is unaffected; tokens come back with time.
        """
        for _ in range(2):
            response, _ = self.get(b"/")
            self.assertTrue(response.startswith(b"HTTP/1.1 200 "))
        response, sent = self.get(b"/")
        self.assertTrue(response.startswith(b"HTTP/1.1 429 Too Many Requests"))
        self.assertIn(b"Retry-After: 1\r\n", response)
        self.assertIsNone(sent)
        other, _ = self.get(b"/", address="192.0.2.2")
        self.assertTrue(other.startswith(b"HTTP/1.1 200 "))
        self.proxy.reactor.advance(1)
        response, _ = self.get(b"/")
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "))

    def test_trustedProxyClient(self):
        """
        Behind a trusted proxy, the client named in X-Forwarded-For is the
        one limited, and the backend sees the chain with the proxy appended.
        """
        for _ in range(2):
            self.get(b"/", address="10.9.0.5", headers=b"X-Forwarded-For: 203.0.113.7\r\n")
        response, _ = self.get(
            b"/", address="10.9.0.5", headers=b"X-Forwarded-For: 203.0.113.7\r\n"
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 429 "))
        response, sent = self.get(
            b"/", address="10.9.0.5", headers=b"X-Forwarded-For: 203.0.113.8\r\n"
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "))
        self.assertIn(b"X-Forwarded-For: 203.0.113.8, 10.9.0.5\r\n", sent)

    def test_untrustedCannotSpoof(self):
        """
        An untrusted client's X-Forwarded-For neither changes who is
        limited nor reaches the backend.
        """
        for index in range(2):
            self.get(b"/", headers=b"X-Forwarded-For: 198.51.100.%d\r\n" % (index,))
        response, _ = self.get(b"/", headers=b"X-Forwarded-For: 198.51.100.9\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 429 "))


class AccessTests(PolicyTestCase):
    def test_deniedAddress(self):
        response, sent = self.get(b"/", address="192.0.2.66")
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "))
        self.assertIsNone(sent)

    def test_blockedPath(self):
        """
        Blocked paths are matched after normalization.
        """
        response, sent = self.get(b"/x/../.git/config")
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "))
        self.assertIsNone(sent)

    def test_notAllowedAddress(self):
        response, _ = self.get(b"/admin", address="198.51.100.1")
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "))

    def test_method(self):
        response, _ = self.get(b"/admin", method=b"DELETE")
        self.assertTrue(response.startswith(b"HTTP/1.1 405 "))
        self.assertIn(b"Allow: GET, HEAD\r\n", response)

    def test_basicAuth(self):
        """
        401 with a challenge without credentials or with wrong ones; the
        right password passes.
        """
        response, _ = self.get(b"/admin")
        self.assertTrue(response.startswith(b"HTTP/1.1 401 "))
        self.assertIn(b'WWW-Authenticate: Basic realm="staff"', response)
        response, _ = self.get(
            b"/admin", headers=b"Authorization: " + basic("alice", "wrong") + b"\r\n"
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 401 "))
        self.proxy.reactor.advance(5)
        response, sent = self.get(
            b"/admin", headers=b"Authorization: " + basic("alice", "secret") + b"\r\n"
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "))
        self.assertIsNotNone(sent)


class CorsAndHeaderTests(PolicyTestCase):
    def test_preflight(self):
        """
        A preflight is answered by lbproxy; the backend never sees it.
        """
        response, sent = self.get(
            b"/api/x",
            method=b"OPTIONS",
            headers=b"Origin: https://app.example\r\nAccess-Control-Request-Method: PUT\r\n"
                    b"Access-Control-Request-Headers: content-type\r\n",
        )
        self.assertIsNone(sent)
        self.assertTrue(response.startswith(b"HTTP/1.1 204 "))
        self.assertIn(b"Access-Control-Allow-Origin: https://app.example\r\n", response)
        self.assertIn(b"Access-Control-Allow-Credentials: true\r\n", response)

    def test_preflightRefused(self):
        response, sent = self.get(
            b"/api/x",
            method=b"OPTIONS",
            headers=b"Origin: https://evil.example\r\nAccess-Control-Request-Method: PUT\r\n",
        )
        self.assertIsNone(sent)
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "))
        self.assertNotIn(b"Access-Control-Allow-Origin", response)

    def test_actualRequest(self):
        """
        A cross-origin request gets the CORS headers with the backend's
        answer; header rules set, remove and substitute variables.
        """
        response, sent = self.get(
            b"/api/x",
            headers=b"Origin: https://app.example\r\nX-Debug: 1\r\nX-Client: forged\r\n",
        )
        self.assertIn(b"X-Client: 192.0.2.1\r\n", sent)
        self.assertNotIn(b"forged", sent)
        self.assertNotIn(b"X-Debug", sent)
        self.assertIn(b"Access-Control-Allow-Origin: https://app.example\r\n", response)
        self.assertIn(b"X-Served-By: 10.1.0.1:80\r\n", response)
        self.assertNotIn(b"Server: backend", response)


class RequestIdTests(PolicyTestCase):
    def test_generated(self):
        """
        A request without an id gets one: sent to the backend, returned to
        the client, and logged.
        """
        response, sent = self.get(b"/")
        [line] = [h for h in sent.split(b"\r\n") if h.startswith(b"X-Request-Id: ")]
        requestId = line.split(b": ", 1)[1]
        self.assertEqual(len(requestId), 32)
        self.assertIn(b"X-Request-Id: " + requestId + b"\r\n", response)
        self.assertIn('id="%s"' % (requestId.decode(),), self.proxy.logLines()[-1])

    def test_kept(self):
        """
        A plain incoming id is kept; one that is not a plain token is
        replaced.
        """
        _, sent = self.get(b"/", headers=b"X-Request-Id: abc-123\r\n")
        self.assertIn(b"X-Request-Id: abc-123\r\n", sent)
        _, sent = self.get(b"/", address="192.0.2.3", headers=b"X-Request-Id: a b\r\n")
        self.assertNotIn(b"X-Request-Id: a b", sent)
        self.assertEqual(sent.count(b"X-Request-Id: "), 1)


class PreflightWithAuthTests(SynchronousTestCase):
    def test_preflightSkipsCredentials(self):
        """
        On a route with basic auth and CORS, a preflight (which browsers
        send without credentials) is answered; address rules still apply.
        """
        config = {
            "pools": {"web": {"targets": ["10.1.0.1:80"]}},
            "routes": [{
                "pool": "web",
                "access": {"deny": ["192.0.2.66"],
                           "basic_auth": {"realm": "r", "users": {"alice": SECRET_HASH}}},
                "cors": {"origins": ["https://app.example"]},
            }],
        }
        proxy = ProxyHarness(config)
        headers = (b"Origin: https://app.example\r\n"
                   b"Access-Control-Request-Method: GET\r\n")
        client = proxy.client(address="192.0.2.1")
        client.send(b"OPTIONS /x HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
        self.assertTrue(client.received().startswith(b"HTTP/1.1 204 "))
        denied = proxy.client(address="192.0.2.66")
        denied.send(b"OPTIONS /x HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
        self.assertTrue(denied.received().startswith(b"HTTP/1.1 403 "))
        plain = proxy.client(address="192.0.2.1")
        plain.send(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
        self.assertTrue(plain.received().startswith(b"HTTP/1.1 401 "))
