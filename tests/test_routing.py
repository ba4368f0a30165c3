"""
Tests for L{lbproxy.runtime.routing}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.runtime.routing import RouteTable, normalize_host, normalize_path, strip_prefix


@dataclass(frozen=True)
class Route:
    """
    Stand-in with the shape of L{lbproxy.config.Route}.
    """

    pool: str
    host: Optional[str] = None
    path: str = "/"
    strip_prefix: bool = False


def route(request_host: Optional[str], request_path: str, table: RouteTable) -> Optional[str]:
    """
    Route a raw Host value and path as the proxy does.

    @return: the pool of the matching route, or L{None}.
    """
    found = table.match(normalize_host(request_host), normalize_path(request_path))
    return None if found is None else found.pool


class NormalizePathTests(SynchronousTestCase):
    """
    Tests for L{normalize_path}.
    """

    cases = [
        ("/", "/"),
        ("", "/"),
        ("/a", "/a"),
        ("/a/", "/a/"),
        ("/a/b/c", "/a/b/c"),
        ("//", "/"),
        ("///", "/"),
        ("//a///b", "/a/b"),
        ("/a//", "/a/"),
        ("/apple/../mango", "/mango"),
        ("/a/./b", "/a/b"),
        ("/../../x", "/x"),
        ("/a/b/..", "/a/"),
        ("/a/b/../", "/a/"),
        ("/a/.", "/a/"),
        ("/a/./", "/a/"),
        ("/.", "/"),
        ("/..", "/"),
        ("/./", "/"),
        ("/../", "/"),
        ("/a/..", "/"),
        ("/a/b/../../..", "/"),
        ("/a/b/c/./../../g", "/a/g"),
        ("/mid/content=5/../6", "/mid/6"),
        ("/a//../b", "/b"),
        ("a/b", "/a/b"),
        ("a", "/a"),
        ("..", "/"),
        ("/.hidden", "/.hidden"),
        ("/a/.hidden/", "/a/.hidden/"),
        ("/a/..b/c", "/a/..b/c"),
        ("/a/b../c", "/a/b../c"),
        ("/a/.../b", "/a/.../b"),
        ("/%2e%2e/x", "/%2e%2e/x"),
        ("/a%2F..%2Fb", "/a%2F..%2Fb"),
        ("/files/%20a%2Fb", "/files/%20a%2Fb"),
        ("/\xff\x00/../\xe9", "/\xe9"),
        ("/a;b/./c", "/a;b/c"),
    ]

    def test_cases(self) -> None:
        """
        Slashes are merged and dot-segments removed; percent-encoding and
        any other octet are left alone.
        """
        for given, expected in self.cases:
            self.assertEqual((given, normalize_path(given)), (given, expected))

    def test_idempotent(self) -> None:
        """
        Normalizing a normalized path changes nothing.
        """
        for given, expected in self.cases:
            self.assertEqual(normalize_path(expected), expected)

    def test_unchangedIsSameObject(self) -> None:
        """
        A path that needs no change is returned as it is, without a copy.
        """
        path = "/api/v1/spells/" + "x" * 20
        self.assertIs(normalize_path(path), path)


class NormalizeHostTests(SynchronousTestCase):
    """
    Tests for L{normalize_host}.
    """

    def test_cases(self) -> None:
        """
        Host values lose case, port, brackets and trailing dot.
        """
        cases = [
            ("www.mango.com", "www.mango.com"),
            ("WWW.Mango.COM", "www.mango.com"),
            ("WWW.Mango.COM:8080", "www.mango.com"),
            ("www.mango.com.", "www.mango.com"),
            ("www.mango.com.:80", "www.mango.com"),
            ("www.mango.com:", "www.mango.com"),
            (" www.mango.com ", "www.mango.com"),
            ("127.0.0.1:8080", "127.0.0.1"),
            ("[::1]:8080", "::1"),
            ("[::1]", "::1"),
            ("[FE80::1]:443", "fe80::1"),
            ("::1", "::1"),
            ("localhost", "localhost"),
        ]
        for given, expected in cases:
            self.assertEqual((given, normalize_host(given)), (given, expected))

    def test_missing(self) -> None:
        """
        No Host, an empty one or one with nothing but a port or dot is
        L{None}.
        """
        for given in [None, "", " ", ":80", ".", "[]"]:
            self.assertIsNone(normalize_host(given), given)


class StripPrefixTests(SynchronousTestCase):
    """
    Tests for L{strip_prefix}.
    """

    def test_cases(self) -> None:
        """
        The prefix goes, the rest keeps its leading slash.
        """
        cases = [
            ("/apple/x", "/apple", "/x"),
            ("/apple/x/", "/apple", "/x/"),
            ("/apple", "/apple", "/"),
            ("/apple/", "/apple", "/"),
            ("/a/b/c", "/a/b", "/c"),
            ("/anything", "/", "/anything"),
            ("/", "/", "/"),
            # Not a match on a segment boundary: left alone.
            ("/applesauce", "/apple", "/applesauce"),
            ("/mango", "/apple", "/mango"),
        ]
        for path, prefix, expected in cases:
            self.assertEqual((path, prefix, strip_prefix(path, prefix)), (path, prefix, expected))


class SeedTests(SynchronousTestCase):
    """
    The cases of the design documents lbproxy started from.
    """

    def test_mangoApple(self) -> None:
        """
        Host and path routing from the testdriven.io chapter: known hosts
        and paths go to their pool, others to no route (the proxy answers
        404).
        """
        table = RouteTable(
            [
                Route(pool="mango", host="www.mango.com"),
                Route(pool="apple", host="www.apple.com"),
                Route(pool="mango", path="/mango"),
                Route(pool="apple", path="/apple"),
            ]
        )
        self.assertEqual(route("www.mango.com", "/", table), "mango")
        self.assertEqual(route("www.apple.com", "/", table), "apple")
        self.assertIsNone(route("www.notmango.com", "/", table))
        self.assertEqual(route("localhost", "/mango", table), "mango")
        self.assertEqual(route("localhost", "/apple", table), "apple")
        self.assertIsNone(route("localhost", "/notmango", table))
        self.assertEqual(route(None, "/mango", table), "mango")
        self.assertIsNone(route(None, "/", table))

    def test_bwss(self) -> None:
        """
        Path routing from BWSS: C{/files} goes to its route, everything
        else (including C{/filesystem}) to the catch-all.
        """
        table = RouteTable(
            [Route(pool="path_routes[0]", path="/files"), Route(pool="default", path="/")]
        )
        self.assertEqual(route("example.com", "/api/spells", table), "default")
        self.assertEqual(route("example.com", "/files/image.jpg", table), "path_routes[0]")
        self.assertEqual(route("example.com", "/files/put", table), "path_routes[0]")
        self.assertEqual(route("example.com", "/files", table), "path_routes[0]")
        self.assertEqual(route("example.com", "/files/", table), "path_routes[0]")
        self.assertEqual(route("example.com", "/filesystem", table), "default")
        self.assertEqual(route(None, "/", table), "default")


class RouteTableTests(SynchronousTestCase):
    """
    Tests for L{RouteTable}.
    """

    def test_empty(self) -> None:
        """
        No routes, no match.
        """
        table = RouteTable([])
        self.assertIsNone(table.match("www.mango.com", "/"))
        self.assertIsNone(table.match(None, "/"))

    def test_returnsRouteObject(self) -> None:
        """
        C{match} returns the configured route object itself.
        """
        r = Route(pool="mango", host="www.mango.com", path="/x", strip_prefix=True)
        self.assertIs(RouteTable([r]).match("www.mango.com", "/x/y"), r)

    def test_hostNormalization(self) -> None:
        """
        Case, port and trailing dot of the Host header do not matter.
        """
        table = RouteTable([Route(pool="mango", host="www.mango.com")])
        hosts = [
            "www.mango.com",
            "WWW.MANGO.COM",
            "www.Mango.com:8080",
            "www.mango.com.",
            "www.mango.com.:443",
        ]
        for host in hosts:
            self.assertEqual(route(host, "/", table), "mango", host)
        self.assertIsNone(route("mango.com", "/", table))
        self.assertIsNone(route("www.mango.co", "/", table))
        self.assertIsNone(route(None, "/", table))

    def test_wildcard(self) -> None:
        """
        C{*.mango.com} matches names with at least one more label, not
        C{mango.com} itself nor names that merely end the same way.
        """
        table = RouteTable([Route(pool="any-mango", host="*.mango.com")])
        self.assertEqual(table.match("www.mango.com", "/"), Route("any-mango", "*.mango.com"))
        self.assertEqual(route("a.b.mango.com", "/x", table), "any-mango")
        self.assertEqual(route("WWW.MANGO.COM:80", "/", table), "any-mango")
        self.assertIsNone(route("mango.com", "/", table))
        self.assertIsNone(route("notmango.com", "/", table))
        self.assertIsNone(route("www.notmango.com", "/", table))
        self.assertIsNone(route("www.mango.com.evil", "/", table))
        self.assertIsNone(table.match(".mango.com", "/"))
        self.assertIsNone(route(None, "/", table))

    def test_exactBeatsWildcardBeatsAny(self) -> None:
        """
        An exact host beats a wildcard which beats a host-less route,
        whatever their order in the configuration.
        """
        routes = [
            Route(pool="any", path="/"),
            Route(pool="wild", host="*.mango.com"),
            Route(pool="exact", host="www.mango.com"),
        ]
        for ordered in (routes, routes[::-1]):
            table = RouteTable(ordered)
            self.assertEqual(route("www.mango.com", "/", table), "exact")
            self.assertEqual(route("api.mango.com", "/", table), "wild")
            self.assertEqual(route("mango.com", "/", table), "any")
            self.assertEqual(route("www.apple.com", "/", table), "any")
            self.assertEqual(route(None, "/", table), "any")

    def test_longerWildcardWins(self) -> None:
        """
        A longer wildcard suffix beats a shorter one, even with a shorter
        path prefix.
        """
        table = RouteTable(
            [
                Route(pool="mango", host="*.mango.com", path="/api"),
                Route(pool="eu", host="*.eu.mango.com"),
                Route(pool="com", host="*.com", path="/api/v1"),
            ]
        )
        self.assertEqual(route("www.eu.mango.com", "/api/x", table), "eu")
        self.assertEqual(route("www.us.mango.com", "/api/x", table), "mango")
        self.assertEqual(route("www.us.mango.com", "/api/v1/x", table), "mango")
        self.assertEqual(route("www.apple.com", "/api/v1/x", table), "com")
        self.assertIsNone(route("www.apple.com", "/api/x", table))
        # eu.mango.com is not under *.eu.mango.com, but is under *.mango.com
        self.assertEqual(route("eu.mango.com", "/api", table), "mango")

    def test_fallThroughWhenPathDoesNotMatch(self) -> None:
        """
        A host class whose routes do not match the path gives way to the
        next class.
        """
        table = RouteTable(
            [
                Route(pool="exact", host="www.mango.com", path="/mango"),
                Route(pool="wild", host="*.mango.com", path="/wild"),
                Route(pool="any", path="/"),
            ]
        )
        self.assertEqual(route("www.mango.com", "/mango/x", table), "exact")
        self.assertEqual(route("www.mango.com", "/wild", table), "wild")
        self.assertEqual(route("www.mango.com", "/other", table), "any")
        self.assertEqual(route("api.mango.com", "/mango", table), "any")
        self.assertEqual(route("api.mango.com", "/wild/", table), "wild")

    def test_hostBeatsLongerPath(self) -> None:
        """
        A route for the request's host wins over a host-less route with a
        longer prefix; a host-less route still serves other hosts.
        """
        table = RouteTable(
            [
                Route(pool="mango", host="www.mango.com", path="/"),
                Route(pool="apple", path="/apple"),
            ]
        )
        self.assertEqual(route("www.mango.com", "/apple", table), "mango")
        self.assertEqual(route("other", "/apple", table), "apple")
        self.assertEqual(route(None, "/apple/pie", table), "apple")
        self.assertIsNone(route("other", "/", table))

    def test_longestPrefixWins(self) -> None:
        """
        Within a host class, the longest matching prefix wins, whatever
        the order.
        """
        routes = [
            Route(pool="root", path="/"),
            Route(pool="api", path="/api"),
            Route(pool="v1", path="/api/v1"),
            Route(pool="h-root", host="h", path="/"),
            Route(pool="h-v1", host="h", path="/api/v1"),
        ]
        for ordered in (routes, routes[::-1]):
            table = RouteTable(ordered)
            self.assertEqual(route(None, "/", table), "root")
            self.assertEqual(route(None, "/api", table), "api")
            self.assertEqual(route(None, "/api/v2", table), "api")
            self.assertEqual(route(None, "/api/v1", table), "v1")
            self.assertEqual(route(None, "/api/v1/spells", table), "v1")
            self.assertEqual(route("h", "/api/v2", table), "h-root")
            self.assertEqual(route("h", "/api/v1/x", table), "h-v1")

    def test_segmentBoundaries(self) -> None:
        """
        A prefix matches whole segments only.
        """
        table = RouteTable([Route(pool="files", path="/files")])
        for path in ["/files", "/files/", "/files/a", "/files/a/b", "//files//a"]:
            self.assertEqual(route(None, path, table), "files", path)
        for path in ["/", "/filesystem", "/files.txt", "/file", "/x/files", "/files%2Fa"]:
            self.assertIsNone(route(None, path, table), path)

    def test_firstInFileWins(self) -> None:
        """
        Of two equally specific routes, the first one configured wins.
        """
        for host in [None, "www.mango.com", "*.mango.com"]:
            first = Route(pool="first", host=host, path="/a")
            second = Route(pool="second", host=host, path="/a")
            self.assertIs(RouteTable([first, second]).match("www.mango.com", "/a/b"), first)
            self.assertIs(RouteTable([second, first]).match("www.mango.com", "/a/b"), second)

    def test_dotSegmentsRouteAfterNormalizing(self) -> None:
        """
        Routing sees the path after dot-segments are removed, so
        C{/apple/../mango} goes where C{/mango} goes.
        """
        table = RouteTable(
            [Route(pool="mango", path="/mango"), Route(pool="apple", path="/apple")]
        )
        self.assertEqual(route(None, "/apple/../mango", table), "mango")
        self.assertEqual(route(None, "/apple/./../mango/x", table), "mango")
        self.assertEqual(route(None, "/x/../../apple", table), "apple")
        self.assertIsNone(route(None, "/mango/..", table))

    def test_tolerantRoutePaths(self) -> None:
        """
        A route path with a trailing slash matches as if it had none.
        """
        table = RouteTable([Route(pool="files", path="/files/")])
        self.assertEqual(route(None, "/files", table), "files")
        self.assertEqual(route(None, "/files/a", table), "files")

    def test_badWildcard(self) -> None:
        """
        A C{*} anywhere but as a leading label is refused.
        """
        for host in ["www.*.com", "*mango.com", "*.*.com"]:
            self.assertRaises(ValueError, RouteTable, [Route(pool="p", host=host)])
