"""
The TLS edge end to end: the real C{twistd lbproxy} with an HTTPS
listener, TLS demo backends, and real clients (curl, openssl s_client) on
127.0.0.1.  Certificates come from a test CA generated here; nothing is
committed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from typing import List

from twisted.trial.unittest import SkipTest

from lbproxy.testing.tls import PKI
from tests.e2e.harness import (
    REPO_ROOT,
    E2ETestCase,
    Response,
    childEnvironment,
    freePorts,
    parseHeaders,
    rewritePorts,
)

MANGO = b"This is the mango application.\n"
APPLE = b"This is the apple application.\n"
SECURE = b"This is the secure application.\n"

#: Seconds a client command may take.
CLIENT_TIMEOUT = 15.0

CONFIG = """
[server]
listen = "tcp:{plain}:interface=127.0.0.1"
access_log = "-"
response_timeout = 10

[tls]
listen = "tcp:{tls}:interface=127.0.0.1"
redirect_http = true
hsts = "max-age=600"

[[tls.certificates]]
cert = "mango.pem"
key = "mango-key.pem"

[[tls.certificates]]
cert = "apple.pem"
key = "apple-key.pem"

[pools.mango]
targets = ["127.0.0.1:{mango}"]

[pools.apple]
targets = ["127.0.0.1:{apple}"]

[pools.secure]
targets = ["https://localhost:{secure}"]
ca = "{ca}"

[pools.wrong]
targets = ["https://localhost:{wrong}"]
ca = "{ca}"

[[routes]]
host = "www.mango.com"
path = "/secure"
pool = "secure"
strip_prefix = true

[[routes]]
host = "www.mango.com"
path = "/wrong"
pool = "wrong"
strip_prefix = true

[[routes]]
host = "www.mango.com"
pool = "mango"

[[routes]]
host = "www.apple.com"
pool = "apple"

[[demo]]
name = "mango"
listen = "tcp:{mango}:interface=127.0.0.1"

[[demo]]
name = "apple"
listen = "tcp:{apple}:interface=127.0.0.1"

[[demo]]
name = "secure"
listen = "ssl:{secure}:interface=127.0.0.1:privateKey=backend-key.pem:certKey=backend.pem"

[[demo]]
name = "wrong"
listen = "ssl:{wrong}:interface=127.0.0.1:privateKey=wrong-key.pem:certKey=wrong.pem"
"""


def requireTool(name: str) -> None:
    if shutil.which(name) is None:
        raise SkipTest(f"{name} is not installed (scripts/test installs it)")


class TLSEdgeTests(E2ETestCase):
    """
    One proxy: HTTPS with two certificates, the plain listener
    redirecting, a plain backend and two HTTPS backends (one whose
    certificate names another host).
    """

    def setUp(self) -> None:
        super().setUp()
        requireTool("openssl")
        self.pki = PKI(str(self.workdir))
        self.pki.issue("mango", ["www.mango.com", "*.mango.com"])
        self.pki.issue("apple", ["www.apple.com"])
        self.pki.issue("backend", ["localhost"])
        self.pki.issue("wrong", ["other.example"])
        plain, tls, mango, apple, secure, wrong = freePorts(6)
        self.plain, self.tls = plain, tls
        config = CONFIG.format(plain=plain, tls=tls, mango=mango, apple=apple, secure=secure,
                               wrong=wrong, ca=self.pki.caPath)
        self.startProxy(config, tls, [plain, mango, apple, secure, wrong])

    def curlTLS(self, host: str, path: str, *args: str) -> Response:
        """
        curl to C{https://HOST:PORT/PATH}, HOST resolved to 127.0.0.1,
        verifying against the test CA, verbose (the certificate shows in
        stderr).
        """
        headerFile = self.workdir / "tls-headers"
        if headerFile.exists():
            headerFile.unlink()
        argv = ["curl", "-sS", "-v", "--noproxy", "*", "--max-time", str(CLIENT_TIMEOUT),
                "--cacert", self.pki.caPath, "-D", str(headerFile),
                "--resolve", f"{host}:{self.tls}:127.0.0.1", *args,
                f"https://{host}:{self.tls}{path}"]
        started = time.monotonic()
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                env=childEnvironment(), timeout=CLIENT_TIMEOUT + 10)
        raw = headerFile.read_bytes() if headerFile.exists() else b""
        status, headers = parseHeaders(raw)
        return Response(status, headers, result.stdout, result.returncode,
                        result.stderr.decode("utf-8", "replace"), time.monotonic() - started)

    def subject(self, response: Response) -> str:
        match = re.search(r"subject: (.*)", response.stderr)
        return match.group(1).strip() if match else ""

    def sClient(self, *args: str, stdin: bytes = b"") -> str:
        argv = ["openssl", "s_client", "-connect", f"127.0.0.1:{self.tls}", *args]
        result = subprocess.run(argv, input=stdin, capture_output=True,
                                env=childEnvironment(), timeout=CLIENT_TIMEOUT)
        return (result.stdout + result.stderr).decode("utf-8", "replace")

    def test_twoHostnamesTwoCertificates(self) -> None:
        """
        curl --resolve to two host names gets each its own certificate
        (SNI) and its own backend; HSTS comes along.
        """
        mango = self.curlTLS("www.mango.com", "/")
        apple = self.curlTLS("www.apple.com", "/")
        self.assertEqual((mango.status, mango.body), (200, MANGO), mango.describe() + self.diag())
        self.assertEqual((apple.status, apple.body), (200, APPLE), apple.describe() + self.diag())
        self.assertEqual(self.subject(mango), "CN=www.mango.com", mango.stderr)
        self.assertEqual(self.subject(apple), "CN=www.apple.com", apple.stderr)
        self.assertEqual(mango.header("Strict-Transport-Security"), ["max-age=600"])
        # A wildcard name gets the wildcard certificate.
        shop = self.curlTLS("shop.mango.com", "/", "-H", "Host: www.mango.com")
        self.assertEqual(self.subject(shop), "CN=www.mango.com", shop.stderr)

    def test_misdirected(self) -> None:
        """
        A Host the SNI-chosen certificate does not cover: 421.
        """
        response = self.curlTLS("www.apple.com", "/", "-H", "Host: www.mango.com")
        self.assertEqual(response.status, 421, response.describe() + self.diag())

    def test_tls11Refused(self) -> None:
        """
        openssl s_client offering TLS 1.1 (ciphers at security level 0, so
        the offer is real) is refused by the server: a protocol version
        alert, number 70.  TLS 1.2 is accepted with a forward-secret suite,
        and its session resumes.
        """
        output = self.sClient("-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
                              "-servername", "www.mango.com")
        self.assertIn("alert protocol version", output)
        self.assertIn("alert number 70", output)
        self.assertNotIn("no protocols available", output)
        output = self.sClient("-tls1_2", "-servername", "www.apple.com")
        self.assertIn("Protocol  : TLSv1.2", output)
        self.assertIn("subject=CN = www.apple.com", output)
        self.assertRegex(output, r"Cipher is ECDHE-(ECDSA|RSA)-")
        # Session resumption (TLS 1.2, whose ticket comes within the
        # handshake, so s_client has it before it leaves).
        session = str(self.workdir / "session.pem")
        first = self.sClient("-tls1_2", "-servername", "www.mango.com", "-sess_out", session)
        self.assertIn("New, TLSv1.2", first)
        second = self.sClient("-tls1_2", "-servername", "www.mango.com", "-sess_in", session)
        self.assertIn("Reused, TLSv1.2", second)

    def test_http2(self) -> None:
        """
        curl --http2 negotiates h2 through ALPN and gets the routed body,
        uploads included.
        """
        if "HTTP2" not in subprocess.run(["curl", "--version"], capture_output=True,
                                         text=True).stdout:
            raise SkipTest("this curl has no HTTP/2")
        response = self.curlTLS("www.mango.com", "/", "--http2",
                                "-w", "%{http_version}")
        self.assertEqual(response.status, 200, response.describe() + self.diag())
        self.assertEqual(response.body, MANGO + b"2")
        self.assertIn("ALPN: server accepted h2", response.stderr)
        body = self.workdir / "upload.bin"
        body.write_bytes(os.urandom(300000))
        echo = self.curlTLS("www.mango.com", "/echo", "--http2", "--data-binary", f"@{body}")
        self.assertEqual(echo.status, 200, echo.describe() + self.diag())
        self.assertIn(b'"body_length": 300000', echo.body)
        self.assertIn(hashlib.sha256(body.read_bytes()).hexdigest().encode(), echo.body)
        self.assertNoUnhandledErrors()

    def test_redirect(self) -> None:
        """
        The plain listener answers 308 with the HTTPS URL.
        """
        response = self.curl(self.plain, "/a?b=c", host="www.mango.com")
        self.assertEqual(response.status, 308, response.describe() + self.diag())
        self.assertEqual(response.header("Location"),
                         [f"https://www.mango.com:{self.tls}/a?b=c"])
        self.assertEqual(response.header("Strict-Transport-Security"), [])

    def test_upstreamHTTPS(self) -> None:
        """
        An https:// backend whose certificate the pool's CA signed for its
        name is used; one whose certificate names another host is refused
        with 502.
        """
        good = self.curlTLS("www.mango.com", "/secure/")
        self.assertEqual((good.status, good.body), (200, SECURE), good.describe() + self.diag())
        self.assertEqual(good.header("X-Demo-Backend"), ["secure"])
        wrong = self.curlTLS("www.mango.com", "/wrong/")
        self.assertEqual(wrong.status, 502, wrong.describe() + self.diag())
        self.assertNoUnhandledErrors()

    def test_reloadOnSIGHUP(self) -> None:
        """
        New certificate files and SIGHUP: new connections get the new
        certificate, without a restart.
        """
        assert self.proxy is not None
        self.assertEqual(self.subject(self.curlTLS("www.mango.com", "/")), "CN=www.mango.com")
        self.pki.issue("mango", ["reloaded.mango.com", "www.mango.com"])
        os.kill(self.proxy.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        subject = ""
        while time.monotonic() < deadline:
            response = self.curlTLS("www.mango.com", "/")
            subject = self.subject(response)
            if subject == "CN=reloaded.mango.com":
                break
            time.sleep(0.1)
        self.assertEqual(subject, "CN=reloaded.mango.com", self.diag())
        self.assertTrue(self.proxy.running())
        self.assertIn("reloaded TLS certificates", self.proxy.output())


class ShippedConfigHTTPSTests(E2ETestCase):
    """
    The shipped C{config.toml} serves HTTPS out of the box: its
    self-signed certificate is generated on the first start.
    """

    def test_selfSigned(self) -> None:
        ports = freePorts(6)
        mapping = dict(zip((8080, 8081, 8082, 9081, 9082, 8443), ports))
        config = rewritePorts((REPO_ROOT / "config.toml").read_text(), mapping)
        self.startProxy(config, mapping[8443], ports[:5])
        cert = self.workdir / "certs" / "demo.pem"
        self.assertTrue(cert.exists(), self.diag())
        self.assertEqual((self.workdir / "certs" / "demo-key.pem").stat().st_mode & 0o777, 0o600)
        argv: List[str] = ["curl", "-sS", "--noproxy", "*", "--max-time", str(CLIENT_TIMEOUT),
                           "--cacert", str(cert)]
        for url in (f"https://localhost:{mapping[8443]}/mango",
                    f"https://127.0.0.1:{mapping[8443]}/apple"):
            result = subprocess.run(argv + [url], capture_output=True, env=childEnvironment(),
                                    timeout=CLIENT_TIMEOUT + 10)
            self.assertEqual(result.returncode, 0, result.stderr.decode() + self.diag())
            self.assertIn(b"application.", result.stdout)
        self.assertIn("generated a self-signed certificate", self.proxy.output())

