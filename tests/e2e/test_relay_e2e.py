"""
Relays end to end: the real C{twistd lbproxy} with a WebSocket echo
backend (the C{websockets} package, client and server), TCP echo
backends behind a C{[[tcp]]} service, and a TLS backend behind
C{tls.passthrough}, driven by real clients (websockets, asyncio sockets,
C{openssl s_client}).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

from twisted.trial.unittest import SkipTest

from lbproxy.testing.tls import PKI
from bench.memory import rss_kib
from tests.e2e.harness import E2ETestCase, childEnvironment, freePorts

try:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect
except ImportError:  # pragma: no cover
    connect = None

#: MiB the blasting backend sends every connection.
BLAST_MIB = 64

#: Seconds a client may take for its whole job.
CLIENT_TIMEOUT = 60.0

CONFIG = """
[server]
listen = "tcp:{plain}:interface=127.0.0.1"
access_log = "-"
websocket_idle_timeout = 120

[tls]
listen = "tcp:{tls}:interface=127.0.0.1"
passthrough = {{ "db.example.com" = "pgtls", "*.internal.example" = "pgtls" }}

[[tls.certificates]]
cert = "www.pem"
key = "www-key.pem"

[pools.ws]
targets = ["127.0.0.1:{ws}"]

[pools.echo]
targets = ["127.0.0.1:{echo1}", "127.0.0.1:{echo2}"]

[pools.pgtls]
targets = ["127.0.0.1:{tlsecho}"]

[pools.blast]
targets = ["127.0.0.1:{blast}"]

[[tcp]]
listen = "tcp:{tcpBlast}:interface=127.0.0.1"
pool = "blast"

[[routes]]
path = "/"
pool = "ws"

[[tcp]]
listen = "tcp:{tcp}:interface=127.0.0.1"
pool = "echo"
idle_timeout = 60
"""


class RelayE2ETests(E2ETestCase):
    def setUp(self) -> None:
        E2ETestCase.setUp(self)
        if connect is None:
            raise SkipTest("the websockets package is not installed (pip install -e '.[test]')")
        self.pki = PKI(str(self.workdir))
        self.pki.issue("www", ["www.example.com"], chain=True)
        self.pki.issue("db", ["db.example.com"], chain=True)
        plain, tls, ws, echo1, echo2, tlsecho, tcp, blast, tcpBlast = freePorts(9)
        self.plain, self.tls, self.tcp, self.tcpBlast = plain, tls, tcp, tcpBlast
        self.echoPorts = (echo1, echo2)
        servers = [sys.executable, "-m", "bench.relayservers"]
        self.wsServer = self.start("ws", servers + ["ws", str(ws)])
        self.echo = self.start("echo", servers + ["echo", str(echo1), str(echo2)])
        self.tlsEcho = self.start(
            "tls-echo", servers + ["tls-echo", str(tlsecho), self.pki.path("db.pem"),
                                   self.pki.path("db-key.pem")]
        )
        self.blast = self.start("blast", servers + ["blast", str(blast), str(BLAST_MIB)])
        self.waitForPorts(self.blast, [blast])
        self.waitForPorts(self.wsServer, [ws])
        self.waitForPorts(self.echo, [echo1, echo2])
        self.waitForPorts(self.tlsEcho, [tlsecho])
        config = CONFIG.format(plain=plain, tls=tls, ws=ws, echo1=echo1, echo2=echo2,
                               tlsecho=tlsecho, tcp=tcp, blast=blast, tcpBlast=tcpBlast)
        self.startProxy(config, plain, alsoWaitFor=[tls, tcp, tcpBlast])

    # WebSocket -------------------------------------------------------------

    def websocket(self, secure: bool = False):
        if secure:
            context = ssl.create_default_context(cafile=self.pki.caPath)
            sock = socket.create_connection(("127.0.0.1", self.tls), timeout=CLIENT_TIMEOUT)
            return connect(f"wss://www.example.com:{self.tls}/chat", sock=sock, ssl=context,
                           server_hostname="www.example.com", open_timeout=CLIENT_TIMEOUT)
        sock = socket.create_connection(("127.0.0.1", self.plain), timeout=CLIENT_TIMEOUT)
        return connect(f"ws://www.example.com:{self.plain}/chat", sock=sock,
                       open_timeout=CLIENT_TIMEOUT)

    def echoThousand(self, secure: bool) -> None:
        with self.websocket(secure) as ws:
            for i in range(1000):
                message = (f"message {i} " * (1 + i % 50)) if i % 2 else os.urandom(i + 1)
                ws.send(message)
                self.assertEqual(ws.recv(timeout=CLIENT_TIMEOUT), message)
            # Closed by the backend with its code: the client sees it.
            ws.send("close:4321")
            with self.assertRaises(ConnectionClosed) as caught:
                ws.recv(timeout=CLIENT_TIMEOUT)
            self.assertEqual(caught.exception.rcvd.code, 4321)
            self.assertEqual(caught.exception.rcvd.reason, "asked to close")
        # Closed by the client with its code: the backend sees it.
        with self.websocket(secure) as ws:
            ws.send("x")
            self.assertEqual(ws.recv(timeout=CLIENT_TIMEOUT), "x")
            ws.close(4002, "client done")
        self.waitForOutput(self.wsServer, "closed 4002 client done")
        self.waitForOutput(self.proxy, '"GET /chat HTTP/1.1" 101 ')

    def waitForOutput(self, process, text: str) -> None:
        deadline = time.monotonic() + 10
        while text not in process.output(None):
            if time.monotonic() > deadline:
                self.fail(f"{process.name} never printed {text!r}\n{self.diag()}")
            time.sleep(0.05)

    def test_websocketEcho(self) -> None:
        """
        1,000 messages (text and binary) echoed through the plain
        listener; close codes pass both ways; the upgrade is logged.
        """
        self.echoThousand(secure=False)
        self.assertRegex(self.proxy.output(None), r"upgraded connection to 127\.0\.0\.1:\d+ "
                         r"\(websocket\) ended after [0-9.]+s: \d+ bytes up, \d+ bytes down")

    def test_websocketEchoTLS(self) -> None:
        """
        The same over the TLS listener (lbproxy terminates TLS).
        """
        self.echoThousand(secure=True)

    def test_websocketAcrossSighup(self) -> None:
        """
        A WebSocket open while lbproxy gets SIGHUP goes on working.
        """
        with self.websocket() as ws:
            ws.send("before")
            self.assertEqual(ws.recv(timeout=CLIENT_TIMEOUT), "before")
            os.kill(self.proxy.pid, signal.SIGHUP)
            self.waitForOutput(self.proxy, "SIGHUP")
            time.sleep(0.5)
            for i in range(10):
                ws.send(f"after {i}")
                self.assertEqual(ws.recv(timeout=CLIENT_TIMEOUT), f"after {i}")
        self.assertTrue(self.proxy.running())
        with self.websocket() as ws:
            ws.send("new")
            self.assertEqual(ws.recv(timeout=CLIENT_TIMEOUT), "new")

    # TCP service -----------------------------------------------------------

    def test_tcpEcho(self) -> None:
        """
        50 clients at once each send 1 MiB through the [[tcp]] service and
        get it back byte for byte; the connections are spread over both
        targets.
        """
        payloads = [os.urandom(1 << 20) for _ in range(50)]

        async def one(data):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.tcp)

            async def send():
                writer.write(data)
                await writer.drain()

            _, got = await asyncio.gather(send(), reader.readexactly(len(data)))
            writer.close()
            await writer.wait_closed()
            return got

        async def run():
            return await asyncio.wait_for(
                asyncio.gather(*[one(data) for data in payloads]), CLIENT_TIMEOUT
            )

        results = asyncio.run(run())
        for sent, got in zip(payloads, results):
            self.assertTrue(sent == got, "a stream came back changed")
        counts = self.echoedMiB(50)
        self.assertEqual(counts, [25, 25], counts)

    def test_tcpHalfClose(self) -> None:
        """
        A client that sends, then shuts down its sending side, still reads
        the whole answer (the echo backend closes when it sees the end).
        """
        data = os.urandom(1 << 20)
        with socket.create_connection(("127.0.0.1", self.tcp), timeout=CLIENT_TIMEOUT) as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                piece = s.recv(1 << 20)
                if not piece:
                    break
                got += piece
        self.assertTrue(got == data, "the answer came back changed (%d bytes)" % (len(got),))

    def test_slowReaderFlatMemory(self) -> None:
        """
        A backend sends 64 MiB to a client that reads nothing for a while:
        lbproxy stops reading the backend (flow control) instead of
        buffering it, so its RSS grows by far less than what was sent;
        then every byte arrives.
        """
        before = rss_kib(self.proxy.pid)
        with socket.create_connection(("127.0.0.1", self.tcpBlast), timeout=CLIENT_TIMEOUT) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            time.sleep(1.5)
            paused = rss_kib(self.proxy.pid)
            total = 0
            while True:
                data = s.recv(1 << 20)
                if not data:
                    break
                total += len(data)
        self.assertEqual(total, BLAST_MIB << 20)
        growth = paused - before
        # Without flow control it would hold most of the 64 MiB.
        self.assertLess(growth, 8 * 1024, f"RSS grew {growth} KiB")

    def echoedMiB(self, total: int):
        """
        How many connections each echo backend echoed 1 MiB on, once
        C{total} did (they print it as they close; waiting for the ports
        and connect health checks make connections that echo nothing).
        """
        deadline = time.monotonic() + 10
        while True:
            output = self.echo.output(None)
            counts = [len(re.findall(rf"echoed {port} {1 << 20}\b", output))
                      for port in self.echoPorts]
            if sum(counts) >= total or time.monotonic() > deadline:
                return counts
            time.sleep(0.1)

    # TLS passthrough ---------------------------------------------------------

    def sClient(self, serverName: str) -> str:
        if shutil.which("openssl") is None:
            raise SkipTest("openssl is not installed (scripts/test installs it)")
        result = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{self.tls}",
             "-servername", serverName, "-CAfile", self.pki.caPath],
            input=b"ping\n", capture_output=True, env=childEnvironment(),
            timeout=CLIENT_TIMEOUT,
        )
        return (result.stdout + result.stderr).decode("utf-8", "replace")

    def test_passthroughAndTermination(self) -> None:
        """
        On the one TLS port, a passthrough name reaches the backend's own
        TLS (its certificate, and its echo), and another name gets
        lbproxy's certificate.
        """
        passthrough = self.sClient("db.example.com")
        self.assertRegex(passthrough, r"subject=\s*CN\s*=\s*db\.example\.com", passthrough)
        self.assertIn("Verify return code: 0 (ok)", passthrough)
        # The backend's TLS carries the bytes.
        context = ssl.create_default_context(cafile=self.pki.caPath)
        with socket.create_connection(("127.0.0.1", self.tls), timeout=CLIENT_TIMEOUT) as raw:
            with context.wrap_socket(raw, server_hostname="db.example.com") as tls:
                tls.sendall(b"ping through\n")
                self.assertEqual(tls.recv(100), b"ping through\n")
        terminated = self.sClient("www.example.com")
        self.assertRegex(terminated, r"subject=\s*CN\s*=\s*www\.example\.com", terminated)
        self.assertNotIn("db.example.com", terminated)
        # A wildcard passthrough name.
        wildcard = self.sClient("pg.internal.example")
        self.assertRegex(wildcard, r"subject=\s*CN\s*=\s*db\.example\.com")
