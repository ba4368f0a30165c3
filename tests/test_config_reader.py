"""
Tests for L{lbproxy.config.reader} and L{lbproxy.config.errors}: the typed
values every section of the configuration reads, and the key paths and
value descriptions in their errors.
"""

from __future__ import annotations

import datetime
import math
import os
from typing import Any, Callable

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.config.errors import ConfigError, child_key, describe, quote
from lbproxy.config.reader import Reader

PATH = "/etc/lbproxy/lbproxy.toml"


class ReaderTestCase(SynchronousTestCase):
    """
    A reader of a file named L{PATH}, and a helper for its errors.
    """

    def setUp(self) -> None:
        self.reader = Reader(PATH)

    def assertError(
        self, read: Callable[..., Any], *args: Any, key: str, reason: str
    ) -> ConfigError:
        """
        C{read(*args)} raises a L{ConfigError} about L{PATH} for C{key}
        with exactly C{reason}.
        """
        with self.assertRaises(ConfigError) as caught:
            read(*args)
        error = caught.exception
        self.assertEqual((error.path, error.key, error.reason), (PATH, key, reason))
        return error


class KeyPathTests(SynchronousTestCase):
    """
    L{child_key}, L{quote}, L{describe} and how a L{ConfigError} reads.
    """

    def test_childKey(self) -> None:
        """
        Bare keys are joined with dots; others are quoted as TOML would;
        the document's own keys have no leading dot.
        """
        self.assertEqual(child_key("", "server"), "server")
        self.assertEqual(child_key("pools", "web-1_a"), "pools.web-1_a")
        self.assertEqual(child_key("pools", "my pool"), 'pools."my pool"')
        self.assertEqual(child_key("pools", "caf\u00e9"), 'pools."caf\u00e9"')
        self.assertEqual(child_key("pools.web.targets[0]", "address"),
                         "pools.web.targets[0].address")
        self.assertEqual(child_key("a", 'say "hi"'), 'a."say \\"hi\\""')

    def test_quote(self) -> None:
        """
        Text is shown in double quotes, escaped, and cut when very long.
        """
        self.assertEqual(quote("tcp:80"), '"tcp:80"')
        self.assertEqual(quote("a\nb"), '"a\\nb"')
        self.assertEqual(quote("x" * 100), '"' + "x" * 77 + '..."')
        self.assertEqual(quote("abcdef", limit=5), '"ab..."')

    def test_describe(self) -> None:
        """
        Each TOML type is named, with the value when it is short.
        """
        self.assertEqual(describe(True), "boolean true")
        self.assertEqual(describe(False), "boolean false")
        self.assertEqual(describe(3), "integer 3")
        self.assertEqual(describe(1.5), "float 1.5")
        self.assertEqual(describe(math.inf), "float inf")
        self.assertEqual(describe("x"), 'string "x"')
        self.assertEqual(describe({}), "a table")
        self.assertEqual(describe([1]), "an array")
        self.assertEqual(describe(datetime.date(2024, 2, 29)), "date/time 2024-02-29")
        self.assertEqual(describe(None), "NoneType")

    def test_errorText(self) -> None:
        """
        An error reads "file: key: reason", or "file: reason" for the whole
        file.
        """
        self.assertEqual(str(ConfigError("c.toml", "pools.web", "bad")), "c.toml: pools.web: bad")
        self.assertEqual(str(ConfigError("c.toml", "", "file not found")),
                         "c.toml: file not found")


class TableTests(ReaderTestCase):
    """
    L{Reader.table}, L{Reader.required} and L{Reader.array}.
    """

    def test_table(self) -> None:
        table = {"rate": 1}
        self.assertIs(self.reader.table(table, "rate_limit"), table)
        self.assertIs(self.reader.table(table, "rate_limit", ("burst", "rate")), table)
        self.assertError(self.reader.table, [], "rate_limit", key="rate_limit",
                         reason="expected a table, got an array")

    def test_unknownKey(self) -> None:
        """
        An unknown key is named by its own key path, with the closest known
        key if there is one, and all known keys.
        """
        self.assertError(
            self.reader.table, {"rat": 1}, "routes[0].rate_limit", ("burst", "rate"),
            key="routes[0].rate_limit.rat",
            reason='unknown key (did you mean "rate"? known: burst, rate)',
        )
        self.assertError(
            self.reader.table, {"my key": 1}, "", ("server",),
            key='"my key"', reason="unknown key (known: server)",
        )

    def test_required(self) -> None:
        self.assertEqual(self.reader.required({"pool": "a"}, "routes[1]", "pool"), "a")
        self.assertError(self.reader.required, {}, "routes[1]", "pool",
                         key="routes[1].pool", reason="required key is missing")

    def test_array(self) -> None:
        self.assertEqual(self.reader.array([], "k", "e.g. []"), [])
        self.assertError(self.reader.array, "GET", "k", 'e.g. ["GET"]', key="k",
                         reason='expected an array (e.g. ["GET"]), got string "GET"')

    def test_strings(self) -> None:
        """
        A non-empty array of distinct strings, each checked (and
        normalized) with its own key path; distinct after normalizing.
        """

        def lower(text: str, key: str) -> str:
            if text == "bad":
                raise self.reader.fail(key, "is bad")
            return text.lower()

        read = self.reader.strings
        self.assertEqual(read(["A", "b"], "k", "", lower), ("a", "b"))
        self.assertError(read, [], "k", "", lower, key="k", reason="must not be empty")
        self.assertError(read, ["a", 1], "k", "", lower, key="k[1]",
                         reason="expected a string, got integer 1")
        self.assertError(read, ["a", "bad"], "k", "", lower, key="k[1]", reason="is bad")
        self.assertError(read, ["a", "b", "A"], "k", "", lower, key="k[2]",
                         reason='"a" is listed twice (also k[0])')


class ScalarTests(ReaderTestCase):
    """
    Strings, booleans, integers, numbers and sizes.
    """

    def test_string(self) -> None:
        self.assertEqual(self.reader.string("", "k"), "")
        self.assertError(self.reader.string, 1.5, "k", key="k",
                         reason="expected a string, got float 1.5")

    def test_nonemptyString(self) -> None:
        self.assertEqual(self.reader.nonempty_string(" a ", "k"), " a ")
        self.assertError(self.reader.nonempty_string, " \t", "k", key="k",
                         reason="must not be empty")

    def test_boolean(self) -> None:
        self.assertIs(self.reader.boolean(False, "k"), False)
        self.assertError(self.reader.boolean, "true", "k", key="k",
                         reason='expected a boolean (true or false), got string "true"')
        self.assertError(self.reader.boolean, 1, "k", key="k",
                         reason="expected a boolean (true or false), got integer 1")

    def test_integer(self) -> None:
        """
        Integers within their bounds, inclusive; a boolean is not one.
        """
        read = self.reader.integer
        self.assertEqual(read(1, "k", 1, 10), 1)
        self.assertEqual(read(10, "k", 1, 10), 10)
        self.assertEqual(read(10 ** 12, "k", 0), 10 ** 12)
        self.assertError(read, True, "k", 0, key="k",
                         reason="expected an integer, got boolean true")
        self.assertError(read, 2.0, "k", 0, key="k", reason="expected an integer, got float 2.0")
        self.assertError(read, 11, "k", 1, 10, key="k", reason="must be from 1 to 10, got 11")
        self.assertError(read, -1, "k", 0, key="k", reason="must be at least 0, got -1")

    def test_number(self) -> None:
        self.assertEqual(self.reader.number(2, "k"), 2)
        self.assertEqual(self.reader.number(-0.5, "k"), -0.5)
        self.assertError(self.reader.number, False, "k", key="k",
                         reason="expected a number, got boolean false")

    def test_positiveNumber(self) -> None:
        """
        Durations: finite numbers above 0, as floats.
        """
        read = self.reader.positive_number
        self.assertEqual(read(3, "k"), 3.0)
        self.assertIsInstance(read(3, "k"), float)
        self.assertError(read, 0, "k", key="k", reason="must be greater than 0, got 0")
        self.assertError(read, math.inf, "k", key="k", reason="must be a finite number, got inf")
        self.assertError(read, math.nan, "k", key="k", reason="must be a finite number, got nan")
        self.assertError(read, "5s", "k", key="k", reason='expected a number, got string "5s"')

    def test_size(self) -> None:
        """
        Bytes, as an integer or with a unit (powers of 1024).
        """
        read = self.reader.size
        self.assertEqual(read(0, "k"), 0)
        self.assertEqual(read("512", "k"), 512)
        self.assertEqual(read("512k", "k"), 512 * 1024)
        self.assertEqual(read(" 10 MiB ", "k"), 10 * 1024 * 1024)
        self.assertEqual(read("1G", "k"), 1 << 30)
        self.assertError(read, -1, "k", key="k", reason="must be at least 0, got -1")
        for bad in ("10x", 1.5, True):
            self.assertError(
                read, bad, "k", key="k",
                reason='expected a size in bytes (1048576) or with a unit ("512k", '
                f'"10m", "1g"), got {describe(bad)}',
            )


class FileAndEndpointTests(ReaderTestCase):
    """
    File names and endpoint strings.
    """

    def test_file(self) -> None:
        """
        Relative file names are relative to the configuration file's
        directory; absolute ones stay.
        """
        self.assertEqual(self.reader.file("certs/a.pem", "k"),
                         os.path.join("/etc/lbproxy", "certs/a.pem"))
        self.assertEqual(self.reader.file("/srv/a.pem", "k"), "/srv/a.pem")
        self.assertError(self.reader.file, " ", "k", key="k", reason="must not be empty")
        self.assertError(self.reader.file, "a\0b", "k", key="k",
                         reason="file name must not contain NUL")

    def test_endpoint(self) -> None:
        self.assertEqual(self.reader.endpoint("tcp:8080", "k"), "tcp:8080")
        error = self.assertError(
            self.reader.endpoint, "tcp:70000", "k", key="k",
            reason='invalid endpoint "tcp:70000": port must be from 0 to 65535, got 70000',
        )
        self.assertIn("k: invalid endpoint", str(error))
        with self.assertRaises(ConfigError) as caught:
            self.reader.endpoint("bogus:1", "server.listen[0]")
        self.assertEqual(caught.exception.key, "server.listen[0]")
        self.assertIn('invalid endpoint "bogus:1"', caught.exception.reason)

    def test_listen(self) -> None:
        """
        One endpoint string, or a non-empty array of distinct ones, each
        named by its index.
        """
        read = self.reader.listen
        self.assertEqual(read("tcp:80", "server.listen"), ("tcp:80",))
        self.assertEqual(read(["tcp:80", "tcp:81"], "server.listen"), ("tcp:80", "tcp:81"))
        self.assertError(read, [], "server.listen", key="server.listen",
                         reason="at least one endpoint is required")
        self.assertError(read, ["tcp:80", "tcp:80"], "server.listen", key="server.listen[1]",
                         reason='endpoint "tcp:80" is listed twice (also server.listen[0])')
        self.assertError(
            read, 80, "server.listen", key="server.listen",
            reason='expected an endpoint string or an array of them (e.g. ["tcp:8080"]), '
            "got integer 80",
        )
