"""
Tests for L{lbproxy.config}.
"""

from __future__ import annotations

import math
import operator
import os
from types import MappingProxyType
from typing import Any, Mapping, Union

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.balance.pool import BALANCERS
from lbproxy.config import (
    BALANCE_ALGORITHMS,
    Config,
    ConfigError,
    DemoBackend,
    Pool,
    Route,
    ServerConfig,
    Target,
    load_config,
    parse_config,
)

FULL_EXAMPLE = """\
[server]
listen = ["tcp:8080"]          # Twisted server endpoint strings (string or list)
connect_timeout = 5.0
response_timeout = 30.0
access_log = "-"               # "-" stdout, a file path, or false

[pools.mango]
targets = ["127.0.0.1:8081", "127.0.0.1:8082"]   # "host:port", "http://host:port" or "https://host:port"
balance = "round_robin"

[pools.apple]
targets = [{ address = "127.0.0.1:9081", weight = 2 }, "127.0.0.1:9082"]   # table form

[[routes]]
host = "www.mango.com"         # exact, or wildcard "*.mango.com"; omitted = any host
pool = "mango"

[[routes]]
path = "/apple"                # path prefix; omitted = "/"
pool = "apple"
strip_prefix = false

[[demo]]
name = "mango"
listen = "tcp:8081:interface=127.0.0.1"
"""

BWSS_EXAMPLE = """\
# Load-balanced targets
[[targets]]
address = "http-api-1:8001"
health_check_endpoint = "/healthz"

[[targets]]
address = "http-api-2:8001"
health_check_endpoint = "/healthz"

[[targets]]
address = "object-storage:8007"
health_check_endpoint = "/healthz"

# Path-based routing configuration
[[path_routes]]
path = "/files"
address = "object-storage:8007"
"""

MINIMAL = """\
[pools.p]
targets = ["127.0.0.1:8081"]
"""

PATH = "config.toml"


def _http(host: str, port: int, **kwargs: Any) -> Target:
    return Target(scheme="http", host=host, port=port, **kwargs)


class _Helpers(SynchronousTestCase):
    """
    Parse TOML text in memory, and check the errors it gives.
    """

    def parse(self, source: Union[str, Mapping[str, Any]]) -> Config:
        data = tomllib.loads(source) if isinstance(source, str) else source
        return parse_config(data, PATH)

    def assertConfigError(
        self, source: Union[str, Mapping[str, Any]], key: str, *fragments: str
    ) -> ConfigError:
        """
        Parsing C{source} fails with a L{ConfigError} about C{key} whose
        reason contains each of C{fragments}.
        """
        error = self.assertRaises(ConfigError, self.parse, source)
        self.assertEqual(error.path, PATH)
        self.assertEqual(error.key, key)
        for fragment in fragments:
            self.assertIn(fragment, error.reason)
        if key:
            self.assertTrue(
                str(error).startswith(f"{PATH}: {key}: "), str(error)
            )
        else:
            self.assertTrue(str(error).startswith(f"{PATH}: "), str(error))
        return error

    def target(self, spec: str) -> Target:
        """
        Parse one target string in a one-target pool.
        """
        config = self.parse({"pools": {"p": {"targets": [spec]}}})
        return config.pools["p"].targets[0]

    def assertTargetError(self, spec: Any, *fragments: str) -> ConfigError:
        return self.assertConfigError(
            {"pools": {"p": {"targets": ["127.0.0.1:1", spec]}}},
            "pools.p.targets[1]",
            *fragments,
        )

    def route(self, **route: Any) -> Route:
        route.setdefault("pool", "p")
        config = self.parse(
            {"pools": {"p": {"targets": ["127.0.0.1:1"]}}, "routes": [route]}
        )
        return config.routes[0]

    def assertRouteError(self, key: str, *fragments: str, **route: Any) -> ConfigError:
        route.setdefault("pool", "p")
        return self.assertConfigError(
            {"pools": {"p": {"targets": ["127.0.0.1:1"]}}, "routes": [route]},
            key,
            *fragments,
        )

    def server(self, **server: Any) -> ServerConfig:
        data = tomllib.loads(MINIMAL)
        data["server"] = server
        return self.parse(data).server

    def assertServerError(self, key: str, *fragments: str, **server: Any) -> ConfigError:
        data = tomllib.loads(MINIMAL)
        data["server"] = server
        return self.assertConfigError(data, key, *fragments)


class ConfigErrorTests(SynchronousTestCase):
    """
    L{ConfigError} names the file, the key and the reason.
    """

    def test_attributes(self) -> None:
        error = ConfigError("c.toml", "server.listen", "bad")
        self.assertEqual(
            (error.path, error.key, error.reason), ("c.toml", "server.listen", "bad")
        )
        self.assertIsInstance(error, Exception)

    def test_strWithKey(self) -> None:
        error = ConfigError("c.toml", "pools.mango.targets[1]", "no port")
        self.assertEqual(str(error), "c.toml: pools.mango.targets[1]: no port")

    def test_strWithoutKey(self) -> None:
        self.assertEqual(str(ConfigError("c.toml", "", "file not found")),
                         "c.toml: file not found")


class TargetTests(SynchronousTestCase):
    """
    L{Target.address} and L{Target.url}.
    """

    def test_ipv4(self) -> None:
        target = Target("http", "127.0.0.1", 8081)
        self.assertEqual(target.address, "127.0.0.1:8081")
        self.assertEqual(target.url, "http://127.0.0.1:8081")
        self.assertEqual((target.weight, target.health_check_endpoint), (1, None))

    def test_ipv6(self) -> None:
        target = Target("https", "::1", 8443)
        self.assertEqual(target.address, "[::1]:8443")
        self.assertEqual(target.url, "https://[::1]:8443")

    def test_frozen(self) -> None:
        target = Target("http", "a", 1)
        self.assertRaises(AttributeError, setattr, target, "port", 2)

    def test_demoDefaultText(self) -> None:
        self.assertEqual(
            DemoBackend("kiwi", "tcp:1").text, "This is the kiwi application."
        )
        self.assertEqual(DemoBackend("kiwi", "tcp:1", "hi").text, "hi")


class FullExampleTests(SynchronousTestCase):
    """
    The documented example file loads to the expected objects.
    """

    def test_fullExample(self) -> None:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(FULL_EXAMPLE)
        config = load_config(path)
        mango = Pool(
            name="mango",
            targets=(_http("127.0.0.1", 8081), _http("127.0.0.1", 8082)),
        )
        apple = Pool(
            name="apple",
            targets=(_http("127.0.0.1", 9081, weight=2), _http("127.0.0.1", 9082)),
        )
        expected = Config(
            path=path,
            server=ServerConfig(
                listen=("tcp:8080",),
                connect_timeout=5.0,
                response_timeout=30.0,
                access_log="-",
            ),
            pools=MappingProxyType({"mango": mango, "apple": apple}),
            routes=(
                Route(pool="mango", host="www.mango.com"),
                Route(pool="apple", path="/apple", strip_prefix=False),
            ),
            demo=(
                DemoBackend(
                    name="mango",
                    listen="tcp:8081:interface=127.0.0.1",
                    text="This is the mango application.",
                ),
            ),
        )
        self.assertEqual(config, expected)
        self.assertEqual(list(config.pools), ["mango", "apple"])

    def test_poolsReadOnly(self) -> None:
        config = parse_config(tomllib.loads(FULL_EXAMPLE), PATH)
        self.assertIsInstance(config.pools, MappingProxyType)
        self.assertRaises(TypeError, operator.setitem, config.pools, "x", None)
        self.assertIsInstance(config.routes, tuple)
        self.assertIsInstance(config.pools["mango"].targets, tuple)


class DefaultsTests(_Helpers):
    """
    Omitted keys take their documented defaults.
    """

    def test_defaults(self) -> None:
        config = self.parse(MINIMAL)
        self.assertEqual(config.path, PATH)
        self.assertEqual(config.server, ServerConfig())
        self.assertEqual(config.server.listen, ("tcp:8080",))
        self.assertEqual(config.server.connect_timeout, 5.0)
        self.assertEqual(config.server.response_timeout, 30.0)
        self.assertEqual(config.server.access_log, "-")
        self.assertIsNone(config.server.default_pool)
        self.assertEqual(config.server.max_idle_per_target, 64)
        self.assertEqual(config.server.idle_timeout, 60.0)
        # No body limit unless one is set: bodies are streamed, the limit
        # protects backends, and no other load balancer has one by default.
        self.assertEqual(config.server.max_body_size, 0)
        self.assertEqual(config.routes, ())
        self.assertEqual(config.demo, ())
        self.assertEqual(
            config.pools["p"], Pool("p", (_http("127.0.0.1", 8081),), "round_robin")
        )

    def test_defaultPathInParseConfig(self) -> None:
        self.assertEqual(parse_config(tomllib.loads(MINIMAL)).path, "<config>")
        error = self.assertRaises(ConfigError, parse_config, {})
        self.assertTrue(str(error).startswith("<config>: "))

    def test_unusedPoolAllowed(self) -> None:
        config = self.parse(
            {
                "pools": {"a": {"targets": ["a:1"]}, "b": {"targets": ["b:1"]}},
                "routes": [{"pool": "a"}],
            }
        )
        self.assertEqual(list(config.pools), ["a", "b"])


class ServerTests(_Helpers):
    """
    The C{[server]} table.
    """

    def test_listenString(self) -> None:
        self.assertEqual(self.server(listen="tcp:9000").listen, ("tcp:9000",))

    def test_listenList(self) -> None:
        self.assertEqual(
            self.server(listen=["tcp:9000", "tcp:9001:interface=127.0.0.1"]).listen,
            ("tcp:9000", "tcp:9001:interface=127.0.0.1"),
        )

    def test_listenUnix(self) -> None:
        self.assertEqual(self.server(listen="unix:/tmp/lb.sock").listen,
                         ("unix:/tmp/lb.sock",))

    def test_accessLogFalse(self) -> None:
        self.assertIsNone(self.server(access_log=False).access_log)

    def test_requestIdHeaderEndingInNewline(self) -> None:
        """
        A header name with a trailing newline is refused (a C{$} in a
        pattern would have let it through).
        """
        self.assertEqual(self.server(request_id_header="X-Id").request_id_header, "X-Id")
        self.assertServerError(
            "server.request_id_header", "not a header name", request_id_header="X-Id\n"
        )

    def test_accessLogPath(self) -> None:
        self.assertEqual(
            self.server(access_log="/var/log/lb.log").access_log, "/var/log/lb.log"
        )

    def test_integersAreNumbers(self) -> None:
        server = self.server(connect_timeout=2, response_timeout=10, idle_timeout=1)
        self.assertEqual(
            (server.connect_timeout, server.response_timeout, server.idle_timeout),
            (2.0, 10.0, 1.0),
        )
        self.assertIsInstance(server.connect_timeout, float)

    def test_fractions(self) -> None:
        self.assertEqual(self.server(connect_timeout=0.25).connect_timeout, 0.25)

    def test_maxIdleZero(self) -> None:
        self.assertEqual(self.server(max_idle_per_target=0).max_idle_per_target, 0)

    def test_defaultPool(self) -> None:
        self.assertEqual(self.server(default_pool="p").default_pool, "p")

    def test_unknownKey(self) -> None:
        error = self.assertServerError(
            "server.listne", "unknown key", 'did you mean "listen"?', listne="tcp:1"
        )
        # Every known key is listed, sorted.
        known = error.reason.split("known: ", 1)[1].rstrip(")").split(", ")
        self.assertEqual(known, sorted(known))
        for name in ("access_log", "connect_timeout", "listen", "response_timeout"):
            self.assertIn(name, known)
        self.assertTrue(str(error).startswith("config.toml: server.listne: unknown key"))

    def test_notATable(self) -> None:
        data = tomllib.loads(MINIMAL)
        data["server"] = "tcp:8080"
        self.assertConfigError(data, "server", "expected a table", 'string "tcp:8080"')

    def test_timeoutString(self) -> None:
        error = self.assertServerError(
            "server.connect_timeout", connect_timeout="5"
        )
        self.assertEqual(error.reason, 'expected a number, got string "5"')

    def test_timeoutBoolean(self) -> None:
        self.assertServerError(
            "server.response_timeout",
            "expected a number, got boolean true",
            response_timeout=True,
        )

    def test_timeoutZero(self) -> None:
        self.assertServerError(
            "server.connect_timeout", "must be greater than 0, got 0", connect_timeout=0
        )

    def test_timeoutNegative(self) -> None:
        self.assertServerError(
            "server.idle_timeout", "must be greater than 0", idle_timeout=-1.5
        )

    def test_timeoutNotFinite(self) -> None:
        self.assertServerError(
            "server.response_timeout", "finite", response_timeout=math.inf
        )
        self.assertServerError(
            "server.connect_timeout", "finite", connect_timeout=math.nan
        )

    def test_http2(self) -> None:
        """
        C{[server.http2]}: C{max_resets} (200), C{max_control_frames}
        (1000) and C{interval} (10 s) bound each HTTP/2 connection; an
        unknown key, a bound below 1 or an interval not above 0 is refused
        with its key.
        """
        from lbproxy.config.http2 import Http2Config

        self.assertEqual(self.server().http2, Http2Config(200, 1000, 10.0))
        self.assertEqual(
            self.server(http2={"max_resets": 50, "max_control_frames": 5000, "interval": 1})
            .http2,
            Http2Config(50, 5000, 1.0),
        )
        self.assertServerError(
            "server.http2.max_resets", "must be from 1 to", http2={"max_resets": 0}
        )
        self.assertServerError(
            "server.http2.interval", "must be greater than 0", http2={"interval": 0}
        )
        self.assertServerError(
            "server.http2.max_reset", "unknown key", http2={"max_reset": 5}
        )
        self.assertServerError("server.http2", "expected a table", http2=5)
        self.assertEqual(self.server(http2={"penalty": 0}).http2.penalty, 0)
        self.assertServerError(
            "server.http2.penalty", "must be from 0 to 300 seconds, got 301",
            http2={"penalty": 301},
        )

    def test_listenBacklog(self) -> None:
        """
        C{listen_backlog}: 511 unless set, an integer from 1 to 65535.
        """
        self.assertEqual(self.server().listen_backlog, 511)
        self.assertEqual(self.server(listen_backlog=4096).listen_backlog, 4096)
        self.assertEqual(self.server(listen_backlog=1).listen_backlog, 1)
        self.assertServerError(
            "server.listen_backlog", "must be from 1 to 65535, got 0", listen_backlog=0
        )
        self.assertServerError(
            "server.listen_backlog", "must be from 1 to 65535, got 65536",
            listen_backlog=65536,
        )
        self.assertServerError(
            "server.listen_backlog", "expected an integer, got string", listen_backlog="511"
        )
        self.assertServerError(
            "server.listen_backlog", "expected an integer", listen_backlog=True
        )

    def test_maxIdleNegative(self) -> None:
        self.assertServerError(
            "server.max_idle_per_target",
            "must be at least 0, got -1",
            max_idle_per_target=-1,
        )

    def test_maxIdleFloat(self) -> None:
        self.assertServerError(
            "server.max_idle_per_target",
            "expected an integer, got float 1.5",
            max_idle_per_target=1.5,
        )

    def test_maxIdleBoolean(self) -> None:
        self.assertServerError(
            "server.max_idle_per_target",
            "expected an integer, got boolean true",
            max_idle_per_target=True,
        )

    def test_accessLogTrue(self) -> None:
        self.assertServerError(
            "server.access_log", "or false to disable", "boolean true", access_log=True
        )

    def test_accessLogEmpty(self) -> None:
        self.assertServerError("server.access_log", 'string ""', access_log="")

    def test_listenEmptyList(self) -> None:
        self.assertServerError(
            "server.listen", "at least one endpoint is required", listen=[]
        )

    def test_listenNumber(self) -> None:
        self.assertServerError(
            "server.listen", "expected an endpoint string", "integer 8080", listen=8080
        )

    def test_listenNotAPort(self) -> None:
        self.assertServerError(
            "server.listen",
            'invalid endpoint "tcp:notaport"',
            "notaport",
            "tcp:8080",
            listen="tcp:notaport",
        )

    def test_listenUnknownType(self) -> None:
        self.assertServerError(
            "server.listen[1]",
            'invalid endpoint "bogus:80"',
            "Unknown endpoint type",
            listen=["tcp:8080", "bogus:80"],
        )

    def test_listenEmptyString(self) -> None:
        self.assertServerError("server.listen", "empty endpoint string", listen="")

    def test_listenBadArgument(self) -> None:
        self.assertServerError(
            "server.listen[0]", "invalid endpoint", "bogus", listen=["tcp:80:bogus=1"]
        )

    def test_listenPortOutOfRange(self) -> None:
        self.assertServerError(
            "server.listen", "port must be from 0 to 65535, got 70000", listen="tcp:70000"
        )

    def test_listenMissingCertificate(self) -> None:
        missing = os.path.abspath(self.mktemp())
        self.assertServerError(
            "server.listen",
            "invalid endpoint",
            listen=f"ssl:8443:privateKey={missing}",
        )

    def test_listenNotAString(self) -> None:
        self.assertServerError(
            "server.listen[1]", "expected a string, got integer 80", listen=["tcp:1", 80]
        )

    def test_listenDuplicate(self) -> None:
        self.assertServerError(
            "server.listen[1]",
            'endpoint "tcp:1" is listed twice (also server.listen[0])',
            listen=["tcp:1", "tcp:1"],
        )

    def test_defaultPoolMissing(self) -> None:
        self.assertServerError(
            "server.default_pool",
            'no pool named "nope" (pools: p)',
            default_pool="nope",
        )

    def test_defaultPoolNotAString(self) -> None:
        self.assertServerError(
            "server.default_pool", "expected a string", default_pool=1
        )


class PoolTests(_Helpers):
    """
    C{[pools.NAME]} tables and their targets.
    """

    def test_bareTarget(self) -> None:
        self.assertEqual(self.target("backend-1:8001"), _http("backend-1", 8001))

    def test_hostLowerCased(self) -> None:
        self.assertEqual(self.target("Backend.Example:80").host, "backend.example")

    def test_underscoreHost(self) -> None:
        self.assertEqual(self.target("object_storage:8007").host, "object_storage")

    def test_httpUrl(self) -> None:
        self.assertEqual(self.target("http://10.0.0.1:8080"), _http("10.0.0.1", 8080))

    def test_httpDefaultPort(self) -> None:
        self.assertEqual(self.target("http://example.com"), _http("example.com", 80))

    def test_httpsDefaultPort(self) -> None:
        self.assertEqual(
            self.target("https://example.com"), Target("https", "example.com", 443)
        )

    def test_httpsWithPort(self) -> None:
        target = self.target("HTTPS://Example.com:8443")
        self.assertEqual(target, Target("https", "example.com", 8443))
        self.assertEqual(target.url, "https://example.com:8443")

    def test_trailingSlashAllowed(self) -> None:
        self.assertEqual(self.target("http://a:81/"), _http("a", 81))

    def test_ipv6(self) -> None:
        target = self.target("[::1]:8080")
        self.assertEqual(target, _http("::1", 8080))
        self.assertEqual(target.address, "[::1]:8080")

    def test_ipv6Normalized(self) -> None:
        self.assertEqual(self.target("[0:0:0:0:0:0:0:1]:80").host, "::1")
        self.assertEqual(self.target("[FE80::A]:80").host, "fe80::a")

    def test_ipv6Url(self) -> None:
        self.assertEqual(self.target("https://[2001:db8::1]"),
                         Target("https", "2001:db8::1", 443))
        self.assertEqual(self.target("http://[::1]:81").address, "[::1]:81")

    def test_weights(self) -> None:
        config = self.parse(
            {
                "pools": {
                    "p": {
                        "targets": [
                            {"address": "a:1", "weight": 3},
                            {"address": "b:1", "weight": 1000},
                            "c:1",
                        ]
                    }
                }
            }
        )
        self.assertEqual(
            [t.weight for t in config.pools["p"].targets], [3, 1000, 1]
        )

    def test_tableTarget(self) -> None:
        config = self.parse(
            {
                "pools": {
                    "p": {
                        "targets": [
                            {
                                "address": "https://a:8443",
                                "weight": 2,
                                "health_check_endpoint": "/healthz",
                            }
                        ]
                    }
                }
            }
        )
        self.assertEqual(
            config.pools["p"].targets,
            (Target("https", "a", 8443, 2, "/healthz"),),
        )

    def test_balance(self) -> None:
        config = self.parse({"pools": {"p": {"targets": ["a:1"], "balance": "round_robin"}}})
        self.assertEqual(config.pools["p"].balance, "round_robin")

    def test_balanceAlgorithms(self) -> None:
        """
        The configuration accepts exactly the balancers the runtime pools
        have (it keeps its own list, not to import the balancers).
        """
        self.assertEqual(sorted(BALANCE_ALGORITHMS), sorted(BALANCERS))

    def test_missingPort(self) -> None:
        self.assertTargetError("localhost", '"localhost" has no port', "host:port")

    def test_portZero(self) -> None:
        self.assertTargetError("a:0", "port must be from 1 to 65535, got 0")

    def test_portTooLarge(self) -> None:
        self.assertTargetError("a:65536", "port must be from 1 to 65535, got 65536")

    def test_portNotDigits(self) -> None:
        self.assertTargetError("a:http", 'port must be a number', '"http"')
        self.assertTargetError("a:+80", "port must be a number")

    def test_portEmpty(self) -> None:
        self.assertTargetError("a:", "empty port")

    def test_urlPath(self) -> None:
        self.assertTargetError("http://a:80/api", "must not have a path, query or fragment")

    def test_urlQuery(self) -> None:
        self.assertTargetError("http://a:80?x=1", "must not have a path, query or fragment")

    def test_barePath(self) -> None:
        self.assertTargetError("a:80/api", "must not have a path")

    def test_emptyHost(self) -> None:
        self.assertTargetError(":8080", "empty host")
        self.assertTargetError("http://:8080", "empty host")

    def test_emptyString(self) -> None:
        self.assertTargetError("", "empty target address")

    def test_otherScheme(self) -> None:
        self.assertTargetError("ftp://a:21", 'unsupported scheme "ftp"', "http or https")

    def test_unbracketedIPv6(self) -> None:
        self.assertTargetError("::1:8080", "IPv6 addresses must be in brackets")

    def test_badIPv6(self) -> None:
        self.assertTargetError("[zz::1]:80", "invalid IPv6 address")

    def test_unclosedIPv6(self) -> None:
        self.assertTargetError("[::1:80", "unclosed")

    def test_badIPv4(self) -> None:
        self.assertTargetError("999.1.1.1:80", "invalid IPv4 address")

    def test_badHostName(self) -> None:
        self.assertTargetError("bad!host:80", "invalid host name")
        self.assertTargetError("a..b:80", "empty label")

    def test_userInfo(self) -> None:
        self.assertTargetError("http://user@a:80", "user information")

    def test_whitespace(self) -> None:
        self.assertTargetError("a b:80", "whitespace")

    def test_notAString(self) -> None:
        self.assertTargetError(8080, "expected a target string", "integer 8080")

    def test_tableMissingAddress(self) -> None:
        self.assertConfigError(
            {"pools": {"apple": {"targets": [{"weight": 2}]}}},
            "pools.apple.targets[0].address",
            "required key is missing",
        )

    def test_tableBadAddress(self) -> None:
        self.assertConfigError(
            {"pools": {"apple": {"targets": [{"address": "nope"}]}}},
            "pools.apple.targets[0].address",
            "has no port",
        )

    def test_tableUnknownKey(self) -> None:
        self.assertConfigError(
            {"pools": {"apple": {"targets": [{"address": "a:1", "wieght": 2}]}}},
            "pools.apple.targets[0].wieght",
            "unknown key",
            'did you mean "weight"?',
            "known: address, health_check_endpoint, weight",
        )

    def test_weightBoolean(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": [{"address": "a:1", "weight": True}]}}},
            "pools.p.targets[0].weight",
            "expected an integer, got boolean true",
        )

    def test_weightString(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": [{"address": "a:1", "weight": "2"}]}}},
            "pools.p.targets[0].weight",
            'expected an integer, got string "2"',
        )

    def test_weightRange(self) -> None:
        for weight in (-1, 1001):
            self.assertConfigError(
                {"pools": {"p": {"targets": [{"address": "a:1", "weight": weight}]}}},
                "pools.p.targets[0].weight",
                f"must be from 0 to 1000, got {weight}",
            )

    def test_weightZero(self) -> None:
        """
        A target of weight 0 (retired: no new clients) is accepted, but
        not a pool where every target has weight 0.
        """
        config = self.parse(
            {"pools": {"p": {"targets": [{"address": "a:1", "weight": 0}, "b:1"]}}}
        )
        self.assertEqual([t.weight for t in config.pools["p"].targets], [0, 1])
        self.assertConfigError(
            {"pools": {"p": {"targets": [{"address": "a:1", "weight": 0}]}}},
            "pools.p.targets",
            "at least one target needs a weight above 0",
        )

    def test_healthCheckEndpoint(self) -> None:
        self.assertConfigError(
            {
                "pools": {
                    "p": {"targets": [{"address": "a:1", "health_check_endpoint": "healthz"}]}
                }
            },
            "pools.p.targets[0].health_check_endpoint",
            'must start with "/"',
        )

    def test_duplicateTarget(self) -> None:
        self.assertConfigError(
            {"pools": {"mango": {"targets": ["a:1", "b:1", "http://A:1"]}}},
            "pools.mango.targets[2]",
            'duplicate target "a:1" (also targets[0])',
        )

    def test_emptyTargets(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": []}}},
            "pools.p.targets",
            "at least one target is required",
        )

    def test_missingTargets(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"balance": "round_robin"}}},
            "pools.p.targets",
            "required key is missing",
        )

    def test_targetsNotAnArray(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": "a:1"}}},
            "pools.p.targets",
            "expected an array",
            'string "a:1"',
        )

    def test_unknownBalance(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": ["a:1"], "balance": "least_connections"}}},
            "pools.p.balance",
            'unknown balance "least_connections" (allowed: round_robin, least_conn, random, hash)',
        )

    def test_unknownPoolKey(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": ["a:1"], "target": ["b:1"]}}},
            "pools.p.target",
            "unknown key",
            "known: balance, ca, client_cert, client_key, discovery, hash_balance_factor, hash_key, "
            "health, max_inflight, queue_size, queue_timeout, server_name, sticky, targets, "
            "verify, weights",
        )

    def test_poolNotATable(self) -> None:
        self.assertConfigError(
            {"pools": {"p": ["a:1"]}}, "pools.p", "expected a table, got an array"
        )

    def test_poolsNotATable(self) -> None:
        self.assertConfigError({"pools": ["a:1"]}, "pools", "expected a table")

    def test_quotedPoolName(self) -> None:
        """
        Key paths quote names that TOML would quote.
        """
        self.assertConfigError(
            {"pools": {"my.pool": {"targets": ["nope"]}}},
            'pools."my.pool".targets[0]',
            "has no port",
        )

    def test_emptyPoolName(self) -> None:
        self.assertConfigError(
            {"pools": {"": {"targets": ["a:1"]}}}, 'pools.""', "must not be empty"
        )


class RouteTests(_Helpers):
    """
    C{[[routes]]} entries.
    """

    def test_defaults(self) -> None:
        self.assertEqual(self.route(), Route(pool="p", host=None, path="/", strip_prefix=False))

    def test_hostNormalized(self) -> None:
        self.assertEqual(self.route(host="WWW.Mango.COM.:8080").host, "www.mango.com")
        self.assertEqual(self.route(host="www.mango.com").host, "www.mango.com")

    def test_wildcardHost(self) -> None:
        self.assertEqual(self.route(host="*.Mango.com").host, "*.mango.com")

    def test_ipHost(self) -> None:
        self.assertEqual(self.route(host="127.0.0.1:8080").host, "127.0.0.1")
        self.assertEqual(self.route(host="[0::1]:8080").host, "::1")
        self.assertEqual(self.route(host="[::1]").host, "::1")
        self.assertEqual(self.route(host="::1").host, "::1")

    def test_pathNormalized(self) -> None:
        self.assertEqual(self.route(path="/").path, "/")
        self.assertEqual(self.route(path="//").path, "/")
        self.assertEqual(self.route(path="/apple/").path, "/apple")
        self.assertEqual(self.route(path="//a///b//").path, "/a/b")
        self.assertEqual(self.route(path="/a.b/..c").path, "/a.b/..c")

    def test_stripPrefix(self) -> None:
        self.assertTrue(self.route(path="/api", strip_prefix=True).strip_prefix)

    def test_order(self) -> None:
        config = self.parse(
            {
                "pools": {"p": {"targets": ["a:1"]}},
                "routes": [{"pool": "p", "path": "/b"}, {"pool": "p", "path": "/a"}],
            }
        )
        self.assertEqual([r.path for r in config.routes], ["/b", "/a"])

    def test_missingPool(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": ["a:1"]}}, "routes": [{"path": "/"}]},
            "routes[0].pool",
            "required key is missing",
        )

    def test_unknownPool(self) -> None:
        error = self.assertConfigError(
            {
                "pools": {"mango": {"targets": ["a:1"]}, "apple": {"targets": ["b:1"]}},
                "routes": [{"pool": "mango"}, {"pool": "apple"}, {"pool": "banana"}],
            },
            "routes[2].pool",
        )
        self.assertEqual(
            str(error),
            'config.toml: routes[2].pool: no pool named "banana" (pools: apple, mango)',
        )

    def test_poolNotAString(self) -> None:
        self.assertRouteError("routes[0].pool", "expected a string", pool=["p"])

    def test_emptyHost(self) -> None:
        self.assertRouteError("routes[0].host", "must not be empty", host="")

    def test_hostWithSpaces(self) -> None:
        self.assertRouteError("routes[0].host", "must not contain spaces", host="www mango.com")

    def test_bareStar(self) -> None:
        self.assertRouteError("routes[0].host", "omit host to match any host", host="*")

    def test_starInside(self) -> None:
        self.assertRouteError(
            "routes[0].host", '"*" is only allowed as a leading "*."', host="www.*.com"
        )
        self.assertRouteError(
            "routes[0].host", '"*" is only allowed as a leading "*."', host="*mango.com"
        )
        self.assertRouteError(
            "routes[0].host", '"*" is only allowed as a leading "*."', host="*.*.com"
        )

    def test_starAlone(self) -> None:
        self.assertRouteError("routes[0].host", 'bare "*"', host="*.")

    def test_badHostName(self) -> None:
        self.assertRouteError("routes[0].host", "invalid host name", host="mango!.com")
        self.assertRouteError("routes[0].host", "invalid port", host="mango.com:http")
        self.assertRouteError("routes[0].host", "brackets", host="mango.com:80:81")
        self.assertRouteError("routes[0].host", "invalid IPv6 host", host="[zz::1]")

    def test_hostNotAString(self) -> None:
        self.assertRouteError("routes[0].host", "expected a string", host=1)

    def test_relativePath(self) -> None:
        self.assertRouteError("routes[0].path", 'must start with "/"', path="apple")

    def test_dotSegments(self) -> None:
        for path in ("/a/../b", "/./a", "/a/..", "/a/%2E%2E/b"):
            self.assertRouteError(
                "routes[0].path", '"." or ".." segments', path=path
            )

    def test_pathQuery(self) -> None:
        self.assertRouteError("routes[0].path", "query or fragment", path="/a?b=1")

    def test_pathWhitespace(self) -> None:
        self.assertRouteError("routes[0].path", "whitespace", path="/a b")

    def test_stripPrefixNotBoolean(self) -> None:
        self.assertRouteError(
            "routes[0].strip_prefix",
            'expected a boolean (true or false), got string "yes"',
            strip_prefix="yes",
        )

    def test_unknownKey(self) -> None:
        self.assertRouteError(
            "routes[0].prefix",
            "unknown key",
            "known: access, cache, compress, cors, headers, host, ",
            prefix="/a",
        )

    def test_routeNotATable(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": ["a:1"]}}, "routes": ["p"]},
            "routes[0]",
            "expected a table",
        )

    def test_routesNotAnArray(self) -> None:
        self.assertConfigError(
            {"pools": {"p": {"targets": ["a:1"]}}, "routes": {"pool": "p"}},
            "routes",
            "expected an array",
        )


class TopLevelTests(_Helpers):
    """
    The document as a whole.
    """

    def test_unknownKey(self) -> None:
        data = tomllib.loads(MINIMAL)
        data["rotues"] = []
        self.assertConfigError(
            data,
            "rotues",
            "unknown key",
            'did you mean "routes"?',
            "known: access, admin, cache, demo, etcd, health, path_routes, pools, rate_limit, routes, server, targets, tcp, tls",
        )

    def test_empty(self) -> None:
        self.assertConfigError({}, "", "no backends configured")

    def test_serverOnly(self) -> None:
        self.assertConfigError({"server": {"listen": "tcp:1"}}, "", "no backends configured")

    def test_emptyPools(self) -> None:
        self.assertConfigError({"pools": {}}, "", "no backends configured")

    def test_emptyFlatTargets(self) -> None:
        self.assertConfigError({"targets": []}, "", "no backends configured")

    def test_notATable(self) -> None:
        self.assertConfigError(["x"], "", "expected a table")  # type: ignore[arg-type]

    def test_noRoutesAllowed(self) -> None:
        config = self.parse(MINIMAL)
        self.assertEqual(config.routes, ())
        self.assertIsNone(config.server.default_pool)


class FlatFormTests(_Helpers):
    """
    The BWSS flat form: C{[[targets]]} and C{[[path_routes]]}.
    """

    def test_bwssExample(self) -> None:
        config = self.parse(BWSS_EXAMPLE)
        self.assertEqual(list(config.pools), ["path_routes[0]", "default"])
        self.assertEqual(
            config.pools["default"],
            Pool(
                name="default",
                targets=(
                    _http("http-api-1", 8001, health_check_endpoint="/healthz"),
                    _http("http-api-2", 8001, health_check_endpoint="/healthz"),
                ),
            ),
        )
        self.assertEqual(
            config.pools["path_routes[0]"],
            Pool(
                name="path_routes[0]",
                targets=(
                    _http("object-storage", 8007, health_check_endpoint="/healthz"),
                ),
            ),
        )
        self.assertEqual(
            config.routes,
            (
                Route(pool="path_routes[0]", path="/files"),
                Route(pool="default", path="/"),
            ),
        )
        self.assertEqual(config.server, ServerConfig())

    def test_unlistedPathRouteAddress(self) -> None:
        """
        A path route to an address not in C{[[targets]]} gets a plain target.
        """
        config = self.parse(
            {
                "targets": [{"address": "a:1"}],
                "path_routes": [{"path": "/x/", "address": "https://b:2"}],
            }
        )
        self.assertEqual(
            config.pools["path_routes[0]"].targets, (Target("https", "b", 2),)
        )
        self.assertEqual(config.routes[0], Route(pool="path_routes[0]", path="/x"))
        self.assertEqual(config.pools["default"].targets, (_http("a", 1),))

    def test_weightTakenFromTargets(self) -> None:
        config = self.parse(
            {
                "targets": [{"address": "http://a:1", "weight": 5}],
                "path_routes": [{"path": "/a", "address": "a:1"}],
            }
        )
        self.assertEqual(config.pools["path_routes[0]"].targets, (_http("a", 1, weight=5),))

    def test_allTargetsPathRouted(self) -> None:
        config = self.parse(
            {
                "targets": [{"address": "a:1"}, {"address": "b:1"}],
                "path_routes": [
                    {"path": "/a", "address": "a:1"},
                    {"path": "/b", "address": "b:1"},
                ],
            }
        )
        self.assertEqual(list(config.pools), ["path_routes[0]", "path_routes[1]"])
        self.assertEqual(
            config.routes,
            (Route(pool="path_routes[0]", path="/a"), Route(pool="path_routes[1]", path="/b")),
        )

    def test_targetsOnly(self) -> None:
        config = self.parse({"targets": [{"address": "a:1"}, "b:2"]})
        self.assertEqual(
            config.pools["default"].targets, (_http("a", 1), _http("b", 2))
        )
        self.assertEqual(config.routes, (Route(pool="default", path="/"),))

    def test_besideFullForm(self) -> None:
        """
        Flat pools come after C{[pools]}; their routes come after
        C{[[routes]]}, and the catch-all last.
        """
        config = self.parse(FULL_EXAMPLE + "\n" + BWSS_EXAMPLE)
        self.assertEqual(
            list(config.pools), ["mango", "apple", "path_routes[0]", "default"]
        )
        self.assertEqual(
            [(r.host, r.path, r.pool) for r in config.routes],
            [
                ("www.mango.com", "/", "mango"),
                (None, "/apple", "apple"),
                (None, "/files", "path_routes[0]"),
                (None, "/", "default"),
            ],
        )

    def test_routesMayUseFlatPools(self) -> None:
        config = self.parse(
            {
                "targets": [{"address": "a:1"}],
                "routes": [{"host": "x.com", "pool": "default"}],
                "server": {"default_pool": "default"},
            }
        )
        self.assertEqual(config.routes[0].pool, "default")
        self.assertEqual(config.server.default_pool, "default")

    def test_defaultPoolConflict(self) -> None:
        self.assertConfigError(
            {"pools": {"default": {"targets": ["a:1"]}}, "targets": [{"address": "b:1"}]},
            "pools.default",
            'conflicts with the "default" pool built from [[targets]]',
        )

    def test_noConflictWhenAllRouted(self) -> None:
        config = self.parse(
            {
                "pools": {"default": {"targets": ["a:1"]}},
                "targets": [{"address": "b:1"}],
                "path_routes": [{"path": "/b", "address": "b:1"}],
            }
        )
        self.assertEqual(list(config.pools), ["default", "path_routes[0]"])

    def test_reservedPoolName(self) -> None:
        self.assertConfigError(
            {
                "pools": {"path_routes[0]": {"targets": ["a:1"]}},
                "path_routes": [{"path": "/b", "address": "b:1"}],
            },
            'pools."path_routes[0]"',
            "reserved",
        )

    def test_duplicateTarget(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1"}, {"address": "http://a:1"}]},
            "targets[1].address",
            'duplicate target "a:1" (also targets[0])',
        )

    def test_badTargetAddress(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "http-api-1"}]},
            "targets[0].address",
            "has no port",
        )

    def test_targetUnknownKey(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1", "health": "/h"}]},
            "targets[0].health",
            "unknown key",
        )

    def test_targetMissingAddress(self) -> None:
        self.assertConfigError(
            {"targets": [{"health_check_endpoint": "/h"}]},
            "targets[0].address",
            "required key is missing",
        )

    def test_targetHealthCheck(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1", "health_check_endpoint": "h"}]},
            "targets[0].health_check_endpoint",
            'must start with "/"',
        )

    def test_pathRouteMissingAddress(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1"}], "path_routes": [{"path": "/a"}]},
            "path_routes[0].address",
            "required key is missing",
        )

    def test_pathRouteMissingPath(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1"}], "path_routes": [{"address": "a:1"}]},
            "path_routes[0].path",
            "required key is missing",
        )

    def test_pathRouteBadPath(self) -> None:
        self.assertConfigError(
            {"path_routes": [{"path": "files", "address": "a:1"}]},
            "path_routes[0].path",
            'must start with "/"',
        )

    def test_pathRouteBadAddress(self) -> None:
        self.assertConfigError(
            {"path_routes": [{"path": "/a", "address": "a:99999"}]},
            "path_routes[0].address",
            "port must be from 1 to 65535",
        )

    def test_pathRouteUnknownKey(self) -> None:
        self.assertConfigError(
            {"path_routes": [{"path": "/a", "address": "a:1", "pool": "x"}]},
            "path_routes[0].pool",
            "unknown key",
            "known: address, path",
        )

    def test_pathRoutesNotAnArray(self) -> None:
        self.assertConfigError(
            {"targets": [{"address": "a:1"}], "path_routes": {"path": "/a"}},
            "path_routes",
            "expected an array",
        )


class DemoTests(_Helpers):
    """
    C{[[demo]]} backends.
    """

    def demo(self, *entries: Any, server: Any = None) -> Any:
        data = tomllib.loads(MINIMAL)
        data["demo"] = list(entries)
        if server is not None:
            data["server"] = server
        return data

    def test_demo(self) -> None:
        config = self.parse(
            self.demo(
                {"name": "mango", "listen": "tcp:8081:interface=127.0.0.1"},
                {"name": "apple", "listen": "tcp:8082", "text": "Apples!"},
            )
        )
        self.assertEqual(
            config.demo,
            (
                DemoBackend("mango", "tcp:8081:interface=127.0.0.1",
                            "This is the mango application."),
                DemoBackend("apple", "tcp:8082", "Apples!"),
            ),
        )

    def test_missingName(self) -> None:
        self.assertConfigError(
            self.demo({"listen": "tcp:1"}), "demo[0].name", "required key is missing"
        )

    def test_emptyName(self) -> None:
        self.assertConfigError(
            self.demo({"name": " ", "listen": "tcp:1"}), "demo[0].name", "must not be empty"
        )

    def test_missingListen(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a"}), "demo[0].listen", "required key is missing"
        )

    def test_badListen(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:1"}, {"name": "b", "listen": "tcp:x"}),
            "demo[1].listen",
            'invalid endpoint "tcp:x"',
        )

    def test_unknownKey(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:1", "body": "x"}),
            "demo[0].body",
            "unknown key",
            "known: listen, name, text",
        )

    def test_textNotAString(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:1", "text": 1}),
            "demo[0].text",
            "expected a string",
        )

    def test_duplicateName(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:1"}, {"name": "a", "listen": "tcp:2"}),
            "demo[1].name",
            'duplicate demo name "a" (also demo[0])',
        )

    def test_listenClash(self) -> None:
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:8080"}),
            "demo[0].listen",
            'endpoint "tcp:8080" is already used by server.listen[0]',
        )
        self.assertConfigError(
            self.demo({"name": "a", "listen": "tcp:1"}, {"name": "b", "listen": "tcp:1"}),
            "demo[1].listen",
            "already used by demo[0].listen",
        )

    def test_demoNotAnArray(self) -> None:
        data = tomllib.loads(MINIMAL)
        data["demo"] = {"name": "a", "listen": "tcp:1"}
        self.assertConfigError(data, "demo", "expected an array")


class LoadConfigTests(SynchronousTestCase):
    """
    L{load_config} reads files and reports unreadable or malformed ones.
    """

    def write(self, text: Union[str, bytes]) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    def assertLoadError(self, path: str, key: str, *fragments: str) -> ConfigError:
        error = self.assertRaises(ConfigError, load_config, path)
        self.assertEqual((error.path, error.key), (path, key))
        for fragment in fragments:
            self.assertIn(fragment, error.reason)
        self.assertTrue(str(error).startswith(path + ": "))
        return error

    def test_load(self) -> None:
        path = self.write(MINIMAL)
        config = load_config(path)
        self.assertEqual(config.path, path)
        self.assertEqual(config.pools["p"].targets, (_http("127.0.0.1", 8081),))

    def test_bwssExample(self) -> None:
        config = load_config(self.write(BWSS_EXAMPLE))
        self.assertEqual(list(config.pools), ["path_routes[0]", "default"])

    def test_missingFile(self) -> None:
        path = self.mktemp()
        error = self.assertLoadError(path, "", "file not found")
        self.assertEqual(str(error), f"{path}: file not found")

    def test_directory(self) -> None:
        path = self.mktemp()
        os.mkdir(path)
        self.assertLoadError(path, "", "directory")

    def test_syntaxError(self) -> None:
        path = self.write('[server]\nlisten = "tcp:8080"\nconnect_timeout = = 5\n')
        self.assertLoadError(path, "", "TOML syntax error", "line 3")

    def test_unterminatedString(self) -> None:
        path = self.write('[server]\nlisten = "tcp:8080\n')
        self.assertLoadError(path, "", "TOML syntax error")

    def test_tableDefinedTwice(self) -> None:
        path = self.write(MINIMAL + MINIMAL)
        self.assertLoadError(path, "", "TOML syntax error", "line 3", "twice")

    def test_notUtf8(self) -> None:
        path = self.write(b'[pools.p]\ntargets = ["\xff:1"]\n')
        self.assertLoadError(path, "", "not UTF-8")

    def test_validationErrorNamesFile(self) -> None:
        path = self.write(MINIMAL + '[server]\nlistne = "tcp:1"\n')
        error = self.assertLoadError(path, "server.listne", "unknown key")
        self.assertTrue(str(error).startswith(f"{path}: server.listne: unknown key"))

    def test_mixedArrayTableFirst(self) -> None:
        """
        Arrays mixing inline tables and strings (TOML 1.0) keep every element;
        (the old C{toml} package dropped the strings after a table).
        """
        path = self.write(
            '[pools.apple]\n'
            'targets = [{ address = "127.0.0.1:9081", weight = 2 }, "127.0.0.1:9082"]\n'
        )
        self.assertEqual(
            load_config(path).pools["apple"].targets,
            (_http("127.0.0.1", 9081, weight=2), _http("127.0.0.1", 9082)),
        )

    def test_mixedArrayStringFirst(self) -> None:
        path = self.write(
            '[pools.apple]\n'
            'targets = ["127.0.0.1:9082", { address = "127.0.0.1:9081", weight = 2 }]\n'
        )
        self.assertEqual(
            load_config(path).pools["apple"].targets,
            (_http("127.0.0.1", 9082), _http("127.0.0.1", 9081, weight=2)),
        )

    def test_mixedArrayMultiline(self) -> None:
        path = self.write(
            '[pools.apple]\n'
            'targets = [\n'
            '  { address = "a:1", health_check_endpoint = "/h,{x}" },  # first, {\n'
            '  "b:2",  # second ]\n'
            "  'c:3',\n"
            '  { address = "[::1]:4", weight = 3 },\n'
            ']\n'
        )
        self.assertEqual(
            load_config(path).pools["apple"].targets,
            (
                _http("a", 1, health_check_endpoint="/h,{x}"),
                _http("b", 2),
                _http("c", 3),
                _http("::1", 4, weight=3),
            ),
        )

    def test_plainArraysUnchanged(self) -> None:
        path = self.write(
            '[server]\nlisten = ["tcp:1", "tcp:2"]\n'
            '[pools.p]\ntargets = ["a:1", "b:1"]\n'
        )
        config = load_config(path)
        self.assertEqual(config.server.listen, ("tcp:1", "tcp:2"))
        self.assertEqual(len(config.pools["p"].targets), 2)
