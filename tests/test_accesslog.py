"""
Tests for L{lbproxy.observe.accesslog}.
"""

from __future__ import annotations

import io
import os
import sys
from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.observe.accesslog import AccessLog, format_line, open_access_log


def line(
    uri: str = "/mango",
    host: Optional[str] = "www.mango.com",
    method: str = "GET",
    version: str = "HTTP/1.1",
) -> str:
    """
    format_line for a proxied request, varying the client-supplied fields.
    """
    return format_line(
        "127.0.0.1",
        method,
        uri,
        version,
        200,
        31,
        host,
        "mango",
        "127.0.0.1:8081",
        0.0021,
        0.0014,
    )


class FormatLineTests(SynchronousTestCase):
    """
    Tests for L{format_line}.
    """

    def test_proxied(self) -> None:
        """
        A proxied request gives every field, times with four decimals.
        """
        self.assertEqual(
            line(),
            '127.0.0.1 "GET /mango HTTP/1.1" 200 31 host="www.mango.com" '
            "pool=mango target=127.0.0.1:8081 time=0.0021 upstream=0.0014",
        )

    def test_local404(self) -> None:
        """
        A request answered locally has pool, target and upstream as -.
        """
        self.assertEqual(
            format_line(
                "10.1.2.3", "GET", "/nope", "HTTP/1.0", 404, 0, "x.example",
                None, None, 0.00004, None,
            ),
            '10.1.2.3 "GET /nope HTTP/1.0" 404 0 host="x.example" '
            "pool=- target=- time=0.0000 upstream=-",
        )

    def test_noHost(self) -> None:
        """
        A request without Host logs host=- unquoted.
        """
        self.assertIn(" host=- ", line(host=None))

    def test_emptyHost(self) -> None:
        """
        An empty Host is logged as an empty quoted string, not as -.
        """
        self.assertIn(' host="" ', line(host=""))

    def test_clientClosed(self) -> None:
        """
        Status 499 and large sizes and times are formatted like any other.
        """
        self.assertEqual(
            format_line(
                "::1", "POST", "/up", "HTTP/1.1", 499, 123456789, "h",
                "p", "10.0.0.2:80", 12.345678, 12.3,
            ),
            '::1 "POST /up HTTP/1.1" 499 123456789 host="h" '
            "pool=p target=10.0.0.2:80 time=12.3457 upstream=12.3000",
        )

    def test_quoteAndBackslash(self) -> None:
        """
        Double quotes and backslashes in the request and host are backslash-escaped.
        """
        self.assertEqual(
            line(uri='/a"b\\c', host='h"\\'),
            '127.0.0.1 "GET /a\\"b\\\\c HTTP/1.1" 200 31 host="h\\"\\\\" '
            "pool=mango target=127.0.0.1:8081 time=0.0021 upstream=0.0014",
        )

    def test_cannotCloseQuote(self) -> None:
        """
        A quote in the URI cannot end the request field and forge later fields.
        """
        forged = line(uri='/x HTTP/1.1" 200 0 host="forged')
        self.assertTrue(
            forged.startswith(
                '127.0.0.1 "GET /x HTTP/1.1\\" 200 0 host=\\"forged HTTP/1.1" 200 31 '
            )
        )

    def test_noNewlines(self) -> None:
        """
        CR, LF and other line breaks in client-supplied fields never reach the output.
        """
        breaks = "\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
        out = format_line(
            "127.0.0.1", "GET" + breaks, "/a" + breaks + "b", "HTTP/1.1" + breaks,
            200, 31, "h" + breaks, "mango", "127.0.0.1:8081", 0.0021, 0.0014,
        )
        self.assertEqual(len(out.splitlines()), 1)
        for c in breaks:
            self.assertNotIn(c, out)

    def test_forgedLine(self) -> None:
        """
        A URI carrying a whole fake log line stays on one line.
        """
        fake = '\n10.6.6.6 "GET /admin HTTP/1.1" 200 1 host="x" pool=p target=t time=0.0 upstream=-'
        out = line(uri="/" + fake)
        self.assertNotIn("\n", out)
        self.assertEqual(len(out.splitlines()), 1)

    def test_controlCharacterEscape(self) -> None:
        """
        A control character in the URI is written as a single-backslash \\xNN escape.
        """
        self.assertEqual(
            line(uri="/a\nb\x00\x1b\x7f"),
            '127.0.0.1 "GET /a\\x0ab\\x00\\x1b\\x7f HTTP/1.1" 200 31 host="www.mango.com" '
            "pool=mango target=127.0.0.1:8081 time=0.0021 upstream=0.0014",
        )

    def test_controlCharacterInHostEscaped(self) -> None:
        """
        A control character in the host is written as a single-backslash \\xNN escape.
        """
        self.assertIn(' host="a\\x0db" ', line(host="a\rb"))

    def test_escapeDistinctFromLiteral(self) -> None:
        """
        A real newline and the four characters backslash-x-0-a are logged differently.
        """
        self.assertNotEqual(line(uri="/a\nb"), line(uri="/a\\x0ab"))

    def test_escapeDistinctForNonASCII(self) -> None:
        """
        Different non-printable characters are logged differently (U+200B is not \\x0b).
        """
        self.assertNotEqual(line(uri="/\u200b"), line(uri="/\x0b"))

    def test_printableUnicodeKept(self) -> None:
        """
        Printable non-ASCII characters are logged as they are.
        """
        self.assertIn('"GET /caf\u00e9/\u65e5\u672c HTTP/1.1"', line(uri="/caf\u00e9/\u65e5\u672c"))


class AccessLogTests(SynchronousTestCase):
    """
    Tests for L{AccessLog} and L{open_access_log}.
    """

    def test_write(self) -> None:
        """
        write() adds a newline to each line, in order.
        """
        stream = io.StringIO()
        log = AccessLog(stream)
        log.write("one")
        log.write(line())
        self.assertEqual(stream.getvalue(), "one\n" + line() + "\n")

    def test_writeFlushes(self) -> None:
        """
        Every write is flushed at once.
        """
        flushed = []

        class Stream(io.StringIO):
            def flush(self) -> None:
                flushed.append(self.getvalue())
                super().flush()

        log = AccessLog(Stream())
        log.write("a")
        log.write("b")
        self.assertEqual(flushed, ["a\n", "a\nb\n"])

    def test_writeToClosedStream(self) -> None:
        """
        Writing to a closed stream does not raise.
        """
        stream = io.StringIO()
        stream.close()
        AccessLog(stream).write("lost")

    def test_writeOSError(self) -> None:
        """
        An OSError from the stream (e.g. a full disk) does not raise.
        """

        class Full(io.StringIO):
            def write(self, s: str) -> int:
                raise OSError(28, "No space left on device")

        AccessLog(Full()).write("lost")

    def test_flushOSError(self) -> None:
        """
        An OSError from flush does not raise either.
        """

        class Broken(io.StringIO):
            def flush(self) -> None:
                raise BrokenPipeError()

        AccessLog(Broken()).write("lost")

    def test_none(self) -> None:
        """
        No setting means no log.
        """
        self.assertIsNone(open_access_log(None))

    def test_stdout(self) -> None:
        """
        "-" writes to standard output and has no path.
        """
        stdout = io.StringIO()
        self.patch(sys, "__stdout__", stdout)
        log = open_access_log("-")
        self.assertIsNotNone(log)
        self.assertIsNone(log.path)
        log.write("hello")
        self.assertEqual(stdout.getvalue(), "hello\n")

    def test_stdoutNotClosed(self) -> None:
        """
        close() and reopen() of a standard-output log leave standard output open and in use.
        """
        stdout = io.StringIO()
        self.patch(sys, "__stdout__", stdout)
        log = open_access_log("-")
        log.reopen()
        log.close()
        self.assertFalse(stdout.closed)
        log.write("still")
        self.assertEqual(stdout.getvalue(), "still\n")

    def test_stdoutFallback(self) -> None:
        """
        Without sys.__stdout__ (pythonw), "-" uses sys.stdout.
        """
        stdout = io.StringIO()
        self.patch(sys, "__stdout__", None)
        self.patch(sys, "stdout", stdout)
        log = open_access_log("-")
        log.write("x")
        self.assertEqual(stdout.getvalue(), "x\n")

    def test_fileCreated(self) -> None:
        """
        A path that does not exist yet is created; lines are UTF-8.
        """
        path = self.mktemp()
        log = open_access_log(path)
        self.addCleanup(log.close)
        self.assertEqual(log.path, path)
        log.write("caf\u00e9")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), "caf\u00e9\n".encode("utf-8"))

    def test_fileAppended(self) -> None:
        """
        An existing file is appended to, not truncated.
        """
        path = self.mktemp()
        with open(path, "w", encoding="utf-8") as f:
            f.write("earlier\n")
        log = open_access_log(path)
        log.write("later")
        log.close()
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "earlier\nlater\n")

    def test_fileVisibleBeforeClose(self) -> None:
        """
        A written line is in the file at once, before the log is closed.
        """
        path = self.mktemp()
        log = open_access_log(path)
        self.addCleanup(log.close)
        log.write("now")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "now\n")

    def test_reopenAfterMove(self) -> None:
        """
        After the file is moved away, reopen() starts a new file at the path.
        """
        path = self.mktemp()
        log = open_access_log(path)
        self.addCleanup(log.close)
        log.write("first")
        os.rename(path, path + ".1")
        log.write("second")
        log.reopen()
        log.write("third")
        with open(path + ".1", encoding="utf-8") as f:
            self.assertEqual(f.read(), "first\nsecond\n")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "third\n")

    def test_reopenClosesOld(self) -> None:
        """
        reopen() closes the stream it replaces.
        """
        path = self.mktemp()
        old = open(path, "a", encoding="utf-8")
        log = AccessLog(old, path)
        self.addCleanup(log.close)
        log.reopen()
        self.assertTrue(old.closed)
        log.write("new")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "new\n")

    def test_writeAfterClose(self) -> None:
        """
        Writing after close() does not raise.
        """
        path = self.mktemp()
        log = open_access_log(path)
        log.close()
        log.write("dropped")
        with open(path, encoding="utf-8") as f:
            self.assertEqual(f.read(), "")
