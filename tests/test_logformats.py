"""
Tests for the access log formats (L{lbproxy.observe.logformats}), the
short reason flag (L{lbproxy.observe.outcome}), the lines of connections
refused before a request existed (L{lbproxy.observe.rejections}) and the
access log in daemon mode.
"""

from __future__ import annotations

import json

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.observe.accesslog import LoggerAccessLog, open_access_log
from lbproxy.observe.logformats import Stamp
from lbproxy.testing import ProxyHarness

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
NOON = 1796126400.0  # 2026-12-01T12:00:00Z


def config(form):
    return {
        "server": {"access_log_format": form, "request_id_header": "X-Request-Id",
                   "response_timeout": 10.0},
        "pools": {"mango": {"targets": ["10.1.0.1:8081", "10.1.0.2:8082"]}},
        "routes": [{"host": "www.mango.com", "path": "/", "pool": "mango"}],
    }


def harness(form):
    proxy = ProxyHarness(config(form))
    proxy.reactor.advance(NOON)
    return proxy


def forwarded(proxy, retry=False):
    """
    One GET answered by the second target after the first refused (with
    C{retry}), taking 0.25 s.
    """
    client = proxy.client(address="192.0.2.9")
    client.send(
        b"GET /x?q=1 HTTP/1.1\r\nHost: www.mango.com\r\nX-Request-Id: r-1\r\n"
        b"User-Agent: curl/8 \"quoted\"\r\nReferer: http://a/\r\n\r\n"
    )
    if retry:
        proxy.refuse()
    proxy.reactor.advance(0.05)
    backend = proxy.accept()
    proxy.reactor.advance(0.125)
    backend.respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
    proxy.reactor.advance(0.075)
    backend.respond(b"hello")
    return client


class FormatTests(SynchronousTestCase):
    """
    Each format, for a forwarded request.
    """

    def test_text(self):
        """
        The text format: a UTC timestamp with milliseconds, then the line
        it always had.
        """
        proxy = harness("text")
        forwarded(proxy)
        [line] = proxy.logLines()
        self.assertEqual(
            line,
            '2026-12-01T12:00:00.250Z 192.0.2.9 "GET /x?q=1 HTTP/1.1" 200 5 '
            'host="www.mango.com" pool=mango target=10.1.0.1:8081 time=0.2500 '
            'upstream=0.2500 id="r-1"',
        )

    def test_combined(self):
        """
        The combined format, as nginx writes it, with quotes escaped.
        """
        proxy = harness("combined")
        forwarded(proxy)
        [line] = proxy.logLines()
        self.assertEqual(
            line,
            '192.0.2.9 - - [01/Dec/2026:12:00:00 +0000] "GET /x?q=1 HTTP/1.1" 200 5 '
            '"http://a/" "curl/8 \\"quoted\\""',
        )

    def test_json(self):
        """
        The json format: one object with every field, durations split into
        connect, time to first byte and total; a retry counted.
        """
        proxy = harness("json")
        forwarded(proxy, retry=True)
        [line] = proxy.logLines()
        record = json.loads(line)
        self.assertEqual(
            record,
            {
                "time": "2026-12-01T12:00:00.250Z", "client": "192.0.2.9", "method": "GET",
                "target": "/x?q=1", "protocol": "HTTP/1.1", "status": 200, "bytes": 5,
                "host": "www.mango.com", "route": "www.mango.com/", "pool": "mango",
                "upstream": "10.1.0.2:8082", "connect": 0.05, "ttfb": 0.175,
                "upstream_time": 0.25, "total": 0.25, "retries": 1, "request_id": "r-1",
                "user_agent": 'curl/8 "quoted"', "cache": None, "reason": None,
            },
        )

    def test_jsonReasons(self):
        """
        The reason flag says why a request was not a plain success: no
        route, upstream refused, upstream timeout, client gone.
        """
        proxy = harness("json")
        proxy.client().send(b"GET / HTTP/1.1\r\nHost: nowhere\r\n\r\n")
        proxy.client().send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        proxy.refuse()
        proxy.refuse()
        proxy.client().send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        proxy.accept()
        proxy.reactor.advance(11)
        gone = proxy.client()
        gone.send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        proxy.accept()
        gone.disconnect()
        records = [json.loads(line) for line in proxy.logLines()]
        self.assertEqual(
            [(r["status"], r["reason"]) for r in records],
            [(404, "no_route"), (502, "upstream_refused"), (504, "upstream_timeout"),
             (499, "client_gone")],
        )

    def test_cutByShutdown(self):
        """
        A request cut by a drain (shutdown, or a reload that removed its
        route) says so.
        """
        proxy = harness("json")
        client = proxy.client()
        client.send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        proxy.accept()
        [request] = client.channel.requests
        request.rejected = 503
        client.disconnect()
        record = json.loads(proxy.logLines()[-1])
        self.assertEqual((record["status"], record["reason"]), (503, "proxy_shutdown"))

    def test_textReason(self):
        """
        A text line of a request that failed says why at its end.
        """
        proxy = harness("text")
        proxy.client().send(b"GET / HTTP/1.1\r\nHost: www.mango.com\r\n\r\n")
        proxy.refuse()
        proxy.refuse()
        self.assertTrue(proxy.logLines()[-1].endswith(" reason=upstream_refused"))

    def test_controlCharactersEscaped(self):
        """
        No format lets a client forge a line.
        """
        for form in ("text", "combined", "json"):
            proxy = harness(form)
            proxy.client().send(
                b"GET / HTTP/1.1\r\nHost: nowhere\r\nUser-Agent: a\x1b[31m\x7fb\r\n\r\n"
            )
            [line] = proxy.logLines()
            self.assertNotIn("\x1b", line)
            self.assertNotIn("\x7f", line)


class RejectionTests(SynchronousTestCase):
    """
    Connections refused before a request existed get a line too.
    """

    def reject(self, form, data):
        proxy = harness(form)
        client = proxy.client(address="192.0.2.7")
        client.send(data)
        return proxy, client

    def test_text(self):
        """
        400 (a malformed head), 414 and 431: one line each, with the reason.
        """
        cases = [
            (b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "bad_request"),
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n", 414, "uri_too_long"),
            (b"GET / HTTP/1.1\r\nX: " + b"a" * 40000 + b"\r\n", 431, "headers_too_large"),
        ]
        for data, code, reason in cases:
            proxy, client = self.reject("text", data)
            self.assertTrue(client.received().startswith(b"HTTP/1.1 %d" % (code,)))
            self.assertEqual(
                proxy.logLines(),
                ['2026-12-01T12:00:00.000Z 192.0.2.7 "-" %d 0 host=- pool=- target=- '
                 'time=0.0000 upstream=- reason=%s' % (code, reason)],
            )

    def test_timeout(self):
        """
        A head that never completes: 408, logged.
        """
        proxy, client = self.reject("json", b"GET / HTTP/1.1\r\n")
        proxy.reactor.advance(11)
        [line] = proxy.logLines()
        record = json.loads(line)
        self.assertEqual((record["status"], record["reason"], record["client"]),
                         (408, "client_timeout", "192.0.2.7"))

    def test_combined(self):
        proxy, _ = self.reject("combined", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")
        self.assertEqual(
            proxy.logLines(), ['192.0.2.7 - - [01/Dec/2026:12:00:00 +0000] "-" 414 - "-" "-"']
        )

    def test_connectionLimit(self):
        """
        A connection over max_connections: 503, logged as the limit.
        """
        settings = config("text")
        settings["server"]["max_connections"] = 1
        proxy = ProxyHarness(settings)
        proxy.client()
        proxy.client(address="192.0.2.8")
        [line] = proxy.logLines()
        self.assertIn(' 192.0.2.8 "-" 503 0 ', line)
        self.assertTrue(line.endswith("reason=connection_limit"))

    def test_dispatchedNotTwice(self):
        """
        A body too slow after its request went down the pipeline: the
        request's own line (408), not a second one.
        """
        proxy = harness("text")
        client = proxy.client()
        client.send(b"POST / HTTP/1.1\r\nHost: www.mango.com\r\nContent-Length: 10\r\n\r\nab")
        proxy.accept()
        proxy.reactor.advance(61)
        lines = proxy.logLines()
        self.assertEqual(len(lines), 1)
        self.assertIn('"POST / HTTP/1.1" 408', lines[0])


class DaemonTests(SynchronousTestCase):
    """
    C{access_log = "-"} without C{-n}: the lines go to the twistd log.
    """

    def test_daemonGoesToLogger(self):
        events = []

        class Logger:
            def info(self, fmt, **kw):
                events.append((LogLevel.info, fmt, kw))

        log = LoggerAccessLog("json", Logger())
        log.write('{"a":1}')
        log.reopen()
        log.close()
        self.assertEqual(events, [(LogLevel.info, "{line}", {"line": '{"a":1}'})])

    def test_openDaemon(self):
        self.assertIsInstance(open_access_log("-", "text", daemon=True), LoggerAccessLog)
        log = open_access_log("-", "combined", daemon=False)
        self.assertNotIsInstance(log, LoggerAccessLog)
        self.assertEqual(log.format, "combined")


class StampTests(SynchronousTestCase):
    def test_stamps(self):
        stamp = Stamp()
        self.assertEqual(stamp.iso(NOON + 0.9999), "2026-12-01T12:00:00.999Z")
        self.assertEqual(stamp.iso(NOON + 61.5), "2026-12-01T12:01:01.500Z")
        self.assertEqual(stamp.clf(NOON + 61.5), "01/Dec/2026:12:01:01 +0000")
