"""
End to end: live reconfiguration of a running C{twistd -n lbproxy}.

  - a wrk load (50 connections, 20 s) while the file is reloaded 10 times
    with changing routes: no failed request, no reset connection; a
    200 MiB download and a 64 MiB upload started before the reloads
    arrive byte-exact;
  - SIGTERM under load: the requests in flight complete, new connections
    are refused, the process exits 0 within C{drain_timeout};
  - targets added and drained through the admin API take and leave
    traffic;
  - with C{workers = 2} a reload reaches both workers;
  - with C{workers = 2} a reload that moves a listener starts a new
    generation of workers: the new port serves, the old one refuses, and
    a load on a kept listener across the reload sees no failed request;
  - a reload that moves the TLS listener serves HTTPS on the new port and
    closes the old one;
  - with C{watch = true} a changed file is reloaded, a broken one
    rejected in one log line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from typing import List, Optional

from twisted.trial.unittest import SkipTest

from bench.wrk import parse_wrk
from tests.e2e.harness import E2ETestCase, childEnvironment, freePorts
from tests.e2e.test_streaming_e2e import (
    BIG,
    BIG_TRANSFER_TIMEOUT,
    DownloadTests,
    writeRandomFile,
)

TOKEN = "e2e-admin-token-0123456789"
#: A streaming upload that spans the reloads too.
UPLOAD = 64 * 1024 * 1024
APPLIED = re.compile(r"reload \((?P<source>[^)]*)\) applied in (?P<ms>[0-9.]+) ms")

#: wrk rotates over paths that every version of the file routes.
ROTATE = """
local paths = {"/a", "/b", "/"}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i % 3) + 1])
end
"""


def version(i: int, port: int, one: int, two: int, extra: str = "") -> str:
    """
    The file at reload C{i}: /a and /b swap pools, a route of its own
    comes and goes, the default pool changes; /bytes stays as it was.
    """
    first, second = ("one", "two") if i % 2 == 0 else ("two", "one")
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
access_log = false
default_pool = "{second}"
drain_timeout = 30
{extra}

[pools.one]
targets = ["127.0.0.1:{one}"]

[pools.two]
targets = ["127.0.0.1:{two}"]

[pools.big]
targets = ["127.0.0.1:{one}"]

[[routes]]
path = "/bytes"
pool = "big"

[[routes]]
path = "/echo"
pool = "big"

[[routes]]
path = "/a"
pool = "{first}"

[[routes]]
path = "/b"
pool = "{second}"

[[routes]]
path = "/v{i}"
pool = "{first}"
"""


def requireWrk() -> str:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SkipTest("wrk is not installed (scripts/test installs it)")
    return wrk


class ReloadE2ETestCase(E2ETestCase):
    def waitForLine(self, pattern, count: int = 1, timeout: float = 20.0) -> List[str]:
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            lines = [line for line in self.proxy.output(tail=None).splitlines()
                     if regex.search(line)]
            if len(lines) >= count:
                return lines
            if time.monotonic() > deadline:
                self.fail(f"no {count} lines matching {pattern!r} in {timeout}s" + self.diag())
            time.sleep(0.05)

    def api(self, admin: int, method: str, path: str, body=None, token=TOKEN):
        request = urllib.request.Request(
            f"http://127.0.0.1:{admin}{path}", method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def backendOf(self, port: int, path: str) -> Optional[str]:
        response = self.curl(port, path, maxTime=10)
        names = response.header("X-Demo-Backend")
        return names[0] if response.status == 200 and names else None


class ReloadUnderLoadTests(ReloadE2ETestCase):
    def test_reloadsUnderLoad(self) -> None:
        """
        20 s of wrk with 50 connections while the file is reloaded 10
        times with changing routes: every request succeeds, no connection
        is reset; a 200 MiB download and a 64 MiB upload started before the
        reloads (both slowed to span them) arrive byte-exact.
        """
        wrk = requireWrk()
        one = self.startDemo("one")
        two = self.startDemo("two")
        (port,) = freePorts(1)
        path = self.writeConfig(version(0, port, one, two))
        self.startProxy(path.read_text(), port)

        # The download first, slowed so that it spans the reloads.
        downloader = DownloadTests("test_contentLength")
        downloader.workdir = self.workdir
        downloader.port = port
        downloader.addCleanup = self.addCleanup
        downloader.diag = self.diag
        result = {}

        def download():
            result["download"] = downloader.download(f"/bytes/{BIG}")

        original = downloader.curlArgs
        downloader.curlArgs = lambda p, u, args, t: original(
            p, u, ["--limit-rate", "12M", *args], BIG_TRANSFER_TIMEOUT)
        thread = threading.Thread(target=download)
        thread.start()
        # And a streaming upload, slowed the same way.
        upload = self.workdir / "upload.bin"
        uploadDigest = writeRandomFile(upload, UPLOAD)
        uploader = subprocess.Popen(
            ["curl", "-sS", "--noproxy", "*", "--max-time", str(BIG_TRANSFER_TIMEOUT),
             "--limit-rate", "4M", "-T", str(upload), f"http://127.0.0.1:{port}/echo"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=childEnvironment(),
        )
        self.addCleanup(lambda: uploader.poll() is None and (uploader.kill(), uploader.wait()))
        script = self.workdir / "rotate.lua"
        script.write_text(ROTATE)
        load = subprocess.Popen(
            [wrk, "-t2", "-c50", "-d20s", "--timeout=10s", "-s", str(script),
             f"http://127.0.0.1:{port}/"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=childEnvironment(),
        )
        self.addCleanup(lambda: load.poll() is None and (load.kill(), load.wait()))
        for i in range(1, 11):
            time.sleep(1.7)
            path.write_text(version(i, port, one, two))
            os.kill(self.proxy.pid, signal.SIGHUP)
            self.waitForLine(r"reload \(SIGHUP\) applied", count=i)
        out, err = load.communicate(timeout=60)
        report = parse_wrk(out.decode("utf-8", "replace"))
        thread.join(BIG_TRANSFER_TIMEOUT + 30)
        lines = self.waitForLine(r"reload \(SIGHUP\) applied", count=10)
        times = [float(APPLIED.search(line).group("ms")) for line in lines]
        print(f"\nreload under load: {report.requests} requests, "
              f"{report.socket_errors} socket errors, {report.non_2xx} non-2xx; "
              f"reload times (ms): min {min(times):.1f}, max {max(times):.1f}, "
              f"mean {sum(times) / len(times):.1f}")
        self.assertGreater(report.requests, 1000, out)
        self.assertEqual((report.connect_errors, report.read_errors, report.write_errors,
                          report.timeouts, report.non_2xx), (0, 0, 0, 0, 0), out)
        uploaded, uploadErr = uploader.communicate(timeout=BIG_TRANSFER_TIMEOUT + 30)
        echo = json.loads(uploaded or b"{}")
        self.assertEqual((echo.get("body_length"), echo.get("body_sha256")),
                         (UPLOAD, uploadDigest), uploadErr.decode() + self.diag())
        status, headers, length, digest, exitCode, stderr = result["download"]
        from tests.e2e.harness import patternDigest

        self.assertEqual((exitCode, status, length), (0, 200, BIG), stderr + self.diag())
        self.assertEqual(digest, patternDigest(BIG))
        # The last file is in service: /v10 is routed, /v1 no longer.
        self.assertEqual(self.curl(port, "/v10").status, 200)
        self.assertEqual(self.curl(port, "/v1").status, 200)  # the default pool
        self.assertNoUnhandledErrors()


class ShutdownTests(ReloadE2ETestCase):
    def test_sigtermUnderLoad(self) -> None:
        """
        SIGTERM while 20 slow requests are in flight and a load runs: they
        all complete, a new connection is refused at once, and the process
        exits 0 within drain_timeout.
        """
        wrk = requireWrk()
        one = self.startDemo("one")
        two = self.startDemo("two")
        (port,) = freePorts(1)
        self.startProxy(version(0, port, one, two).replace(
            "drain_timeout = 30", "drain_timeout = 8"), port)
        load = subprocess.Popen(
            [wrk, "-t1", "-c20", "-d6s", "--timeout=5s", f"http://127.0.0.1:{port}/a"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=childEnvironment(),
        )
        self.addCleanup(lambda: load.poll() is None and (load.kill(), load.wait()))
        results: List = [None] * 20
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def slow(index):
            try:
                with opener.open(f"http://127.0.0.1:{port}/slow/3", timeout=20) as response:
                    results[index] = (response.status, response.read())
            except Exception as e:
                results[index] = (0, repr(e).encode())

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        started = time.monotonic()
        os.kill(self.proxy.pid, signal.SIGTERM)
        time.sleep(0.5)
        refused = False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except ConnectionRefusedError:
            refused = True
        for thread in threads:
            thread.join(30)
        code = self.proxy.popen.wait(timeout=20)
        took = time.monotonic() - started
        load.communicate(timeout=30)
        print(f"\nSIGTERM: exit {code} after {took:.2f}s; slow requests: "
              f"{sum(1 for r in results if r and r[0] == 200)}/20 completed")
        self.assertTrue(refused, "a new connection was accepted after SIGTERM" + self.diag())
        for status, body in results:
            self.assertEqual(status, 200, repr(body) + self.diag())
            self.assertIn(b"slept 3", body)
        self.assertEqual(code, 0, self.diag())
        self.assertLess(took, 8 + 2)


class AdminApiTests(ReloadE2ETestCase):
    def test_addDrainRemove(self) -> None:
        """
        A target added through the API takes traffic at once; drained, it
        leaves it; the status shows it apart; a reload of the file keeps
        it.
        """
        one = self.startDemo("one")
        two = self.startDemo("two")
        port, admin = freePorts(2)
        extra = f'\n[admin]\nlisten = "tcp:{admin}"\ntoken = "{TOKEN}"\n'
        text = version(0, port, one, two) + extra
        path = self.writeConfig(text)
        self.startProxy(text, port, alsoWaitFor=[admin])
        self.assertEqual({self.backendOf(port, "/bytes/1") for _ in range(4)}, {"one"})

        code, body = self.api(admin, "POST", "/api/pools/big/targets",
                              {"address": f"127.0.0.1:{two}"}, token=None)
        self.assertEqual(code, 401)
        before = time.monotonic()
        code, body = self.api(admin, "POST", "/api/pools/big/targets",
                              {"address": f"127.0.0.1:{two}", "weight": 1})
        self.assertEqual(code, 201, body)
        first = self.backendOf(port, "/bytes/1")
        second = self.backendOf(port, "/bytes/1")
        reached = time.monotonic() - before
        self.assertEqual({first, second}, {"one", "two"})
        print(f"\nAPI change to traffic: {reached * 1000:.0f} ms (API call and 2 requests)")

        code, body = self.api(admin, "POST", f"/api/pools/big/targets/127.0.0.1:{one}/drain")
        self.assertEqual((code, body["state"]), (200, "draining"))
        self.assertEqual({self.backendOf(port, "/bytes/1") for _ in range(6)}, {"two"})

        # A reload of the file keeps the API's changes.
        os.kill(self.proxy.pid, signal.SIGHUP)
        self.waitForLine(r"reload \(SIGHUP\) applied")
        self.assertEqual({self.backendOf(port, "/bytes/1") for _ in range(6)}, {"two"})
        code, status = self.api(admin, "GET", "/api/status", token=None)
        targets = {t["address"]: t for t in status["pools"]["big"]["targets"]}
        self.assertEqual(targets[f"127.0.0.1:{two}"]["api"], {"added": True, "weight": 1})
        self.assertEqual(targets[f"127.0.0.1:{one}"]["state"], "draining")

        self.api(admin, "POST", f"/api/pools/big/targets/127.0.0.1:{one}/enable")
        code, body = self.api(admin, "DELETE", f"/api/pools/big/targets/127.0.0.1:{two}")
        self.assertEqual(code, 200, body)
        self.assertEqual({self.backendOf(port, "/bytes/1") for _ in range(6)}, {"one"})
        code, body = self.api(admin, "POST", "/api/reload")
        self.assertEqual((code, body["applied"]), (200, True))
        path.write_text(text.replace('[pools.big]', '[pools.big]\nbalance = "nope"'))
        code, body = self.api(admin, "POST", "/api/reload")
        self.assertEqual(code, 422)
        self.assertEqual(body["key"], "pools.big.balance")
        self.assertNoUnhandledErrors()


class WorkersReloadTests(ReloadE2ETestCase):
    def test_reachesBothWorkers(self) -> None:
        """
        With workers = 2, SIGHUP to the main process: it validates the file
        and logs the outcome once; both workers serve the new routes
        (checked over 40 new connections, spread over both).  Targets
        added and drained through the admin API (in the main process)
        reach both workers too.
        """
        one = self.startDemo("one")
        two = self.startDemo("two")
        port, admin = freePorts(2)
        extra = "workers = 2"
        tail = f'\n[admin]\nlisten = "tcp:{admin}"\ntoken = "{TOKEN}"\n'
        path = self.writeConfig(version(0, port, one, two, extra) + tail)
        self.startProxy(path.read_text(), port, alsoWaitFor=[admin])
        self.waitForLine(r"worker \d+ started", count=2)
        time.sleep(1)
        self.assertEqual({self.backendOf(port, "/a") for _ in range(10)}, {"one"})
        path.write_text(version(1, port, one, two, extra) + tail)
        os.kill(self.proxy.pid, signal.SIGHUP)
        self.waitForLine(r"reload \(SIGHUP\) applied")
        self.assertEventually(port, "/a", {"two"})
        output = self.proxy.output(tail=None)
        self.assertEqual(len(re.findall(r"reload \(SIGHUP\) applied", output)), 1, output)
        self.assertEqual(self.curl(port, "/v1").status, 200)

        # /a is on pool "two" now: add "one" to it, then drain "two".
        code, body = self.api(admin, "POST", "/api/pools/two/targets",
                              {"address": f"127.0.0.1:{one}"})
        self.assertEqual(code, 201, body)
        self.assertEventually(port, "/a", {"one", "two"})
        code, body = self.api(admin, "POST", f"/api/pools/two/targets/127.0.0.1:{two}/drain")
        self.assertEqual(code, 200, body)
        self.assertEventually(port, "/a", {"one"})

        # The file is broken now (a reload would be rejected), and a worker
        # dies: the one started in its place runs what the main process
        # serves (the last valid text and the API's changes).
        path.write_text("[server\n")
        started = re.findall(r"worker (\d+) started \(pid (\d+)\)", self.proxy.output(tail=None))
        os.kill(int(started[-1][1]), signal.SIGKILL)
        self.waitForLine(r"worker \d+ started", count=3)
        time.sleep(1)
        self.assertEventually(port, "/a", {"one"})
        self.assertEqual(self.curl(port, "/v1").status, 200)
        self.assertNoUnhandledErrors()

    def assertEventually(self, port: int, path: str, backends: set) -> None:
        """
        Within 10 s, 40 requests on new connections (spread over both
        workers) get exactly C{backends}.
        """
        deadline = time.monotonic() + 10
        while True:
            seen = {self.backendOf(port, path) for _ in range(40)}
            if seen == backends or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual(seen, backends, self.diag())


class WorkersListenerReloadTests(ReloadE2ETestCase):
    def test_moveListener(self) -> None:
        """
        workers = 2, listening on a kept port and a port that moves: a wrk
        load (10 connections, 6 s, a new connection per request) on the
        kept port and slow requests on the moving one run across the
        reload.  (With keep-alive, wrk can count a read error when an old
        worker closes an idle connection as wrk sends on it: the usual
        HTTP/1.1 race a client retries; docs/operations.md.)  A new generation of two
        workers serves the new port, the old generation drains (its slow
        requests complete) and exits, the old port refuses connections,
        and wrk sees no error.
        """
        wrk = requireWrk()
        one = self.startDemo("one")
        kept, first, second = freePorts(3)

        def text(moving: int) -> str:
            listen = (f'listen = ["tcp:{kept}:interface=127.0.0.1", '
                      f'"tcp:{moving}:interface=127.0.0.1"]')
            return re.sub(r"listen = .*", listen, version(0, kept, one, one, "workers = 2"),
                          count=1)

        path = self.writeConfig(text(first))
        self.startProxy(path.read_text(), kept, alsoWaitFor=[first])
        self.waitForLine(r"worker \d+ started", count=2)
        time.sleep(1)
        load = subprocess.Popen(
            [wrk, "-t1", "-c10", "-d6s", "--timeout=5s", "-H", "Connection: close",
             f"http://127.0.0.1:{kept}/a"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env=childEnvironment(),
        )
        self.addCleanup(lambda: load.poll() is None and (load.kill(), load.wait()))
        results: List = [None] * 4
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def slow(index):
            try:
                with opener.open(f"http://127.0.0.1:{first}/slow/2", timeout=20) as response:
                    results[index] = (response.status, response.read())
            except Exception as e:
                results[index] = (0, repr(e).encode())

        threads = [threading.Thread(target=slow, args=(i,)) for i in range(len(results))]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        path.write_text(text(second))
        started = time.monotonic()
        os.kill(self.proxy.pid, signal.SIGHUP)
        line = self.waitForLine(r"reload \(SIGHUP\) applied")[0]
        took = time.monotonic() - started
        self.assertIn(f"listeners opened: tcp:{second}:interface=127.0.0.1", line)
        self.assertIn(f"closed: tcp:{first}:interface=127.0.0.1", line)
        self.assertEqual(self.curl(second, "/a").status, 200, self.diag())
        for thread in threads:
            thread.join(30)
        for status, body in results:
            self.assertEqual(status, 200, repr(body) + self.diag())
        self.waitForLine(r"of a previous generation exited", count=2)
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", first), timeout=2).close()
        out, err = load.communicate(timeout=30)
        report = parse_wrk(out.decode())
        print(f"\nworkers listener move: reload applied after {took:.2f}s; wrk "
              f"{report.requests} requests, {report.socket_errors} socket errors, "
              f"{report.non_2xx} non-2xx")
        self.assertGreater(report.requests, 100, out)
        self.assertEqual((report.connect_errors, report.read_errors, report.write_errors,
                          report.timeouts, report.non_2xx), (0, 0, 0, 0, 0), out)
        self.assertEqual(len(re.findall(r"worker \d+ started", self.proxy.output(tail=None))),
                         4, self.diag())
        self.assertNoUnhandledErrors()


class TLSListenerReloadTests(ReloadE2ETestCase):
    def test_moveTLSListener(self) -> None:
        """
        SIGHUP with C{tls.listen} moved to another port: HTTPS is served
        there (with the configured certificate), the old port refuses
        connections, and the plain listener goes on.
        """
        from lbproxy.testing.tls import PKI

        pki = PKI(str(self.workdir))
        cert, key = pki.issue("site", ["localhost"])
        backend = self.startDemo("one")
        plain, first, second = freePorts(3)

        def text(tls: int) -> str:
            return (version(0, plain, backend, backend)
                    + f'\n[tls]\nlisten = "tcp:{tls}:interface=127.0.0.1"\n'
                    f'\n[[tls.certificates]]\ncert = "{cert}"\nkey = "{key}"\n')

        path = self.writeConfig(text(first))
        self.startProxy(path.read_text(), plain, alsoWaitFor=[first])

        def https(port: int):
            return subprocess.run(
                ["curl", "-sS", "--noproxy", "*", "--max-time", "10", "--cacert", pki.caPath,
                 "-o", "/dev/null", "-w", "%{http_code}", f"https://localhost:{port}/a"],
                stdin=subprocess.DEVNULL, capture_output=True, env=childEnvironment(),
                timeout=20,
            )

        self.assertEqual(https(first).stdout, b"200", https(first).stderr)
        path.write_text(text(second))
        os.kill(self.proxy.pid, signal.SIGHUP)
        line = self.waitForLine(r"reload \(SIGHUP\) applied")[0]
        self.assertIn(f"listeners opened: tcp:{second}:interface=127.0.0.1", line)
        self.assertIn(f"closed: tcp:{first}:interface=127.0.0.1", line)
        self.assertNotIn("applied only by a restart", line)
        served = https(second)
        self.assertEqual((served.returncode, served.stdout), (0, b"200"), served.stderr)
        refused = https(first)
        # curl: 7 is "failed to connect".
        self.assertEqual(refused.returncode, 7, refused.stderr)
        self.assertEqual(self.curl(plain, "/a").status, 200)
        self.assertNoUnhandledErrors()


class WatchTests(ReloadE2ETestCase):
    def test_watch(self) -> None:
        """
        With watch = true: a broken file is rejected in one log line naming
        file, key and reason; a valid change is applied.
        """
        one = self.startDemo("one")
        two = self.startDemo("two")
        (port,) = freePorts(1)
        extra = "watch = true"
        path = self.writeConfig(version(0, port, one, two, extra))
        self.startProxy(path.read_text(), port)
        path.write_text(version(1, port, one, two, extra).replace('pool = "big"', 'pool = "bog"'))
        lines = self.waitForLine(r"reload \(file change\) rejected")
        self.assertIn(f"{path}: routes[0].pool: no pool named", lines[0])
        self.assertEqual(self.backendOf(port, "/a"), "one")
        path.write_text(version(1, port, one, two, extra))
        self.waitForLine(r"reload \(file change\) applied")
        self.assertEqual(self.backendOf(port, "/a"), "two")
        time.sleep(1.5)
        output = self.proxy.output(tail=None)
        self.assertEqual(len(re.findall(r"reload \(file change\)", output)), 2, output)


class HTTP2ShutdownTests(ReloadE2ETestCase):
    def test_sigtermHTTP2(self) -> None:
        """
        Requests in flight on HTTP/2 connections (TLS, ALPN h2) complete
        too when SIGTERM arrives.
        """
        if shutil.which("openssl") is None:
            raise SkipTest("openssl is not installed")
        from lbproxy.testing.tls import PKI

        pki = PKI(str(self.workdir))
        pki.issue("site", ["www.example.com"])
        one = self.startDemo("one")
        two = self.startDemo("two")
        port, tls = freePorts(2)
        text = version(0, port, one, two).replace("drain_timeout = 30", "drain_timeout = 8")
        text += f"""
[tls]
listen = "tcp:{tls}:interface=127.0.0.1"

[[tls.certificates]]
cert = "site.pem"
key = "site-key.pem"
"""
        self.startProxy(text, port, alsoWaitFor=[tls])
        curls = [
            subprocess.Popen(
                ["curl", "-sS", "--http2", "--noproxy", "*", "--max-time", "20",
                 "--cacert", pki.caPath, "-o", "-", "-w", "%{http_code} %{http_version}",
                 "--resolve", f"www.example.com:{tls}:127.0.0.1",
                 f"https://www.example.com:{tls}/slow/3"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=childEnvironment(),
            )
            for _ in range(3)
        ]
        for curl in curls:
            self.addCleanup(lambda c=curl: c.poll() is None and (c.kill(), c.wait()))
        time.sleep(1.5)
        os.kill(self.proxy.pid, signal.SIGTERM)
        outputs = [curl.communicate(timeout=30) for curl in curls]
        code = self.proxy.popen.wait(timeout=20)
        for out, err in outputs:
            self.assertIn(b"slept 3", out, err.decode() + self.diag())
            self.assertTrue(out.endswith(b"200 2"), out)
        self.assertEqual(code, 0, self.diag())
