"""
Tests for the edge policies' configuration (L{lbproxy.config.access},
L{lbproxy.config.ratelimit}, L{lbproxy.config.cors}, L{lbproxy.config.headers},
L{lbproxy.config.clientaddr}) and the policies built from it
(L{lbproxy.runtime.policies}).
"""

from __future__ import annotations

from typing import Any, Callable

try:
    import tomllib
except ImportError:  # Python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy.access import AccessPolicy
from lbproxy.policy.clientaddr import ClientAddressResolver
from lbproxy.config import ConfigError
from lbproxy.policy.cors import CorsPolicy
from lbproxy.config.access import AccessConfig, BasicAuthConfig, parse_access
from lbproxy.config.clientaddr import parse_forwarded_header, parse_trusted_proxies
from lbproxy.config.cors import CorsConfig, parse_cors
from lbproxy.config.headers import HeaderRulesConfig, parse_header_rules
from lbproxy.config.ratelimit import RateLimitConfig, parse_rate_limit
from lbproxy.config.reader import Reader
from lbproxy.runtime.policies import (
    build_access_policy,
    build_client_address_resolver,
    build_cors_policy,
    build_header_rules,
    build_rate_limiter,
)
from lbproxy.policy.headerrules import HeaderRules
from lbproxy.policy.passwd import MIN_ITERATIONS, hash_password
from lbproxy.policy.ratelimit import RateLimiter

ALICE = hash_password("wonderland", MIN_ITERATIONS, salt=b"alice-salt-16-by")

EXAMPLE = f"""\
trusted_proxies = ["10.0.0.0/8", "2001:db8:ffff::1"]

[rate_limit]
rate = 10.0
burst = 20

[access]
allow = ["10.0.0.0/8", "2001:db8::/32"]
deny = ["10.1.2.3"]
blocked_paths = ["/admin", "/.git"]
methods = ["GET", "POST"]
basic_auth = {{ realm = "staff", users = {{ alice = "{ALICE}" }} }}

[[routes]]
rate_limit = {{ rate = 0.5, burst = 2 }}
access = {{ deny = ["192.0.2.0/24"] }}
cors = {{ origins = ["https://app.example"], methods = ["GET", "POST"], headers = ["Content-Type"], credentials = true, max_age = 600 }}
headers = {{ request_set = {{ "X-Env" = "prod" }}, request_add = {{}}, request_remove = ["X-Debug"], response_set = {{}}, response_add = {{}}, response_remove = ["Server"] }}

[[routes]]
rate_limit = false
"""


#: Reads the values under test, as if from a file named lbproxy.toml.
reader = Reader("lbproxy.toml")


class EdgeConfigTestCase(SynchronousTestCase):
    """
    Helpers for checking errors.
    """

    def assertError(
        self,
        parse: Callable[[Any, str, Reader], object],
        value: Any,
        key: str,
        reason: str,
        at: str = "routes[2].x",
    ) -> ConfigError:
        """
        C{parse(value, at, reader)} raises a L{ConfigError} for C{key} whose
        reason contains C{reason}.
        """
        with self.assertRaises(ConfigError) as caught:
            parse(value, at, reader)
        error = caught.exception
        self.assertEqual(error.key, key)
        self.assertIn(reason, error.reason)
        self.assertEqual(error.path, "lbproxy.toml")
        return error


class ExampleTests(EdgeConfigTestCase):
    """
    The shapes documented for operators parse, as global tables and as
    per-route inline tables.
    """

    def setUp(self) -> None:
        self.document = tomllib.loads(EXAMPLE)

    def test_globalTables(self) -> None:
        """
        The global C{[rate_limit]}, C{[access]} tables and C{trusted_proxies} parse.
        """
        self.assertEqual(
            parse_rate_limit(self.document["rate_limit"], "rate_limit", reader),
            RateLimitConfig(rate=10.0, burst=20),
        )
        access = parse_access(self.document["access"], "access", reader)
        self.assertEqual(
            access,
            AccessConfig(
                allow=("10.0.0.0/8", "2001:db8::/32"),
                deny=("10.1.2.3/32",),
                blocked_paths=("/admin", "/.git"),
                methods=("GET", "POST"),
                basic_auth=BasicAuthConfig(realm="staff", users={"alice": ALICE}),
            ),
        )
        self.assertEqual(
            parse_trusted_proxies(self.document["trusted_proxies"], "trusted_proxies", reader),
            ("10.0.0.0/8", "2001:db8:ffff::1/128"),
        )

    def test_routeTables(self) -> None:
        """
        The per-route inline tables parse; C{rate_limit = false} turns the limit off.
        """
        route, off = self.document["routes"]
        self.assertEqual(
            parse_rate_limit(route["rate_limit"], "routes[0].rate_limit", reader),
            RateLimitConfig(rate=0.5, burst=2),
        )
        self.assertIsNone(parse_rate_limit(off["rate_limit"], "routes[1].rate_limit", reader))
        self.assertEqual(
            parse_access(route["access"], "routes[0].access", reader),
            AccessConfig(deny=("192.0.2.0/24",)),
        )
        self.assertEqual(
            parse_cors(route["cors"], "routes[0].cors", reader),
            CorsConfig(
                origins=("https://app.example",),
                methods=("GET", "POST"),
                headers=("Content-Type",),
                credentials=True,
                max_age=600,
            ),
        )
        self.assertEqual(
            parse_header_rules(route["headers"], "routes[0].headers", reader),
            HeaderRulesConfig(
                request_set=(("X-Env", "prod"),),
                request_remove=("X-Debug",),
                response_remove=("Server",),
            ),
        )

    def test_build(self) -> None:
        """
        Every parsed table builds its policy, which behaves as configured.
        """
        route = self.document["routes"][0]
        limiter = build_rate_limiter(parse_rate_limit(route["rate_limit"], "r", reader))
        self.assertIsInstance(limiter, RateLimiter)
        self.assertEqual((limiter.rate, limiter.burst), (0.5, 2))

        policy = build_access_policy(parse_access(self.document["access"], "access", reader))
        self.assertIsInstance(policy, AccessPolicy)
        self.assertEqual(policy.check("10.1.2.3", b"GET", "/", None).status, 403)
        self.assertEqual(policy.check("10.0.0.5", b"GET", "/", None).status, 401)
        self.assertIsNone(
            policy.check("10.0.0.5", b"GET", "/", b"Basic YWxpY2U6d29uZGVybGFuZA==")
        )

        cors = build_cors_policy(parse_cors(route["cors"], "c", reader))
        self.assertIsInstance(cors, CorsPolicy)
        self.assertEqual(cors.preflight(b"https://app.example", b"POST", b"content-type")[0], 204)

        rules = build_header_rules(parse_header_rules(route["headers"], "h", reader))
        self.assertIsInstance(rules, HeaderRules)
        self.assertEqual(
            rules.applyRequest([(b"X-Debug", b"1")], {}), [(b"X-Env", b"prod")]
        )

        resolver = build_client_address_resolver(
            parse_trusted_proxies(self.document["trusted_proxies"], "t", reader)
        )
        self.assertIsInstance(resolver, ClientAddressResolver)
        self.assertEqual(resolver.resolve("10.0.0.1", [b"192.0.2.9"], []), "192.0.2.9")


class RateLimitTests(EdgeConfigTestCase):
    """
    Tests for L{parse_rate_limit}.
    """

    def test_defaultBurst(self) -> None:
        """
        The burst defaults to one second's worth of requests, at least 1.
        """
        self.assertEqual(parse_rate_limit({"rate": 2.5}, "k", reader), RateLimitConfig(2.5, 3))
        self.assertEqual(parse_rate_limit({"rate": 0.1}, "k", reader), RateLimitConfig(0.1, 1))
        self.assertEqual(parse_rate_limit({"rate": 5}, "k", reader), RateLimitConfig(5.0, 5))

    def test_errors(self) -> None:
        """
        Each bad value is named by its key path.
        """
        at = "routes[2].rate_limit"
        p = parse_rate_limit
        self.assertError(p, True, at, "expected a table, got boolean true", at)
        self.assertError(p, [], at, "expected a table", at)
        self.assertError(p, {}, f"{at}.rate", "required key is missing", at)
        self.assertError(p, {"rate": 1, "brust": 2}, f"{at}.brust", 'did you mean "burst"?', at)
        self.assertError(p, {"rate": "10"}, f"{at}.rate", 'expected a number, got string "10"', at)
        self.assertError(p, {"rate": True}, f"{at}.rate", "expected a number", at)
        self.assertError(p, {"rate": 0}, f"{at}.rate", "greater than 0", at)
        self.assertError(p, {"rate": -1.0}, f"{at}.rate", "greater than 0", at)
        self.assertError(p, {"rate": float("inf")}, f"{at}.rate", "greater than 0", at)
        self.assertError(p, {"rate": float("nan")}, f"{at}.rate", "greater than 0", at)
        self.assertError(p, {"rate": 1, "burst": 0}, f"{at}.burst", "from 1 to", at)
        self.assertError(p, {"rate": 1, "burst": 2.0}, f"{at}.burst", "expected an integer", at)


class AccessTests(EdgeConfigTestCase):
    """
    Tests for L{parse_access}.
    """

    def test_empty(self) -> None:
        """
        An empty table has no rules.
        """
        self.assertEqual(parse_access({}, "access", reader), AccessConfig())

    def test_networks(self) -> None:
        """
        Networks are normalized; mapped IPv4 networks become IPv4.
        """
        config = parse_access(
            {"allow": [" 10.0.0.0/8", "::ffff:192.0.2.0/120", "2001:DB8::1"]}, "a", reader
        )
        self.assertEqual(config.allow, ("10.0.0.0/8", "192.0.2.0/24", "2001:db8::1/128"))

    def test_networkErrors(self) -> None:
        """
        Bad networks are named by their index.
        """
        at = "routes[2].access"
        p = parse_access
        self.assertError(
            p, {"allow": ["10.0.0.0/8", "10.0.0.1/8"]}, f"{at}.allow[1]",
            'host bits set (did you mean "10.0.0.0/8"?)', at,
        )
        self.assertError(p, {"deny": ["10.0.0.300"]}, f"{at}.deny[0]", "invalid network", at)
        self.assertError(p, {"deny": ["fe80::%eth0/64"]}, f"{at}.deny[0]", "invalid network", at)
        self.assertError(p, {"deny": ["example.com"]}, f"{at}.deny[0]", "invalid network", at)
        self.assertError(p, {"deny": [10]}, f"{at}.deny[0]", "expected a string, got integer 10", at)
        self.assertError(p, {"deny": "10.0.0.0/8"}, f"{at}.deny", "expected an array", at)
        self.assertError(p, {"allow": []}, f"{at}.allow", "omit allow to allow every address", at)
        self.assertError(
            p, {"deny": ["10.1.2.3", "10.1.2.3/32"]}, f"{at}.deny[1]", "listed twice (also", at
        )

    def test_blockedPaths(self) -> None:
        """
        Blocked paths are normalized as request paths are.
        """
        config = parse_access(
            {"blocked_paths": ["/admin/", "//x//y", "/%7euser", "/a%2fb", "/%e2%82%ac"]}, "a", reader
        )
        self.assertEqual(
            config.blocked_paths, ("/admin", "/x/y", "/~user", "/a%2Fb", "/%E2%82%AC")
        )

    def test_blockedPathErrors(self) -> None:
        """
        Bad blocked paths are named by their index.
        """
        at = "access"
        p = parse_access
        for path, reason in [
            ("admin", 'must start with "/"'),
            ("/a b", "whitespace"),
            ("/a?x", "query"),
            ("/a#x", "fragment"),
            ("/a/../b", '".."'),
            ("/%2e%2E/b", '".."'),
            ("/a/%zz", "invalid percent-escape"),
            ("/a/%4", "invalid percent-escape"),
        ]:
            self.assertError(p, {"blocked_paths": ["/ok", path]}, "access.blocked_paths[1]", reason, at)
        self.assertError(p, {"blocked_paths": []}, "access.blocked_paths", "must not be empty", at)

    def test_methodErrors(self) -> None:
        """
        Methods must be distinct, upper-case tokens.
        """
        at = "routes[0].access"
        p = parse_access
        self.assertError(p, {"methods": ["GET", "get"]}, f"{at}.methods[1]", 'did you mean "GET"?', at)
        self.assertError(p, {"methods": ["GE T"]}, f"{at}.methods[0]", "invalid method", at)
        self.assertError(p, {"methods": [""]}, f"{at}.methods[0]", "invalid method", at)
        self.assertError(p, {"methods": ["GET\n"]}, f"{at}.methods[0]", "invalid method", at)
        self.assertError(p, {"methods": ["GET", "GET"]}, f"{at}.methods[1]", "listed twice", at)
        self.assertError(p, {"methods": []}, f"{at}.methods", "must not be empty", at)

    def test_customMethod(self) -> None:
        """
        Methods beyond RFC 9110's are accepted.
        """
        self.assertEqual(parse_access({"methods": ["PURGE"]}, "a", reader).methods, ("PURGE",))

    def test_basicAuthDefaults(self) -> None:
        """
        The realm defaults to C{"lbproxy"}.
        """
        config = parse_access({"basic_auth": {"users": {"alice": ALICE}}}, "a", reader)
        self.assertEqual(config.basic_auth, BasicAuthConfig("lbproxy", {"alice": ALICE}))

    def test_basicAuthErrors(self) -> None:
        """
        Each basic authentication mistake is named by its key path.
        """
        at = "routes[2].access"
        key = f"{at}.basic_auth"
        p = parse_access
        self.assertError(p, {"basic_auth": "alice"}, key, "expected a table", at)
        self.assertError(p, {"basic_auth": {}}, f"{key}.users", "required key is missing", at)
        self.assertError(p, {"basic_auth": {"users": {}}}, f"{key}.users", "at least one user", at)
        self.assertError(p, {"basic_auth": {"users": []}}, f"{key}.users", "expected a table", at)
        self.assertError(
            p, {"basic_auth": {"users": {"alice": ALICE}, "relm": "x"}}, f"{key}.relm",
            'did you mean "realm"?', at,
        )
        self.assertError(
            p, {"basic_auth": {"realm": " ", "users": {"alice": ALICE}}}, f"{key}.realm",
            "must not be empty", at,
        )
        self.assertError(
            p, {"basic_auth": {"realm": "a\nb", "users": {"alice": ALICE}}}, f"{key}.realm",
            "control characters", at,
        )
        self.assertError(
            p, {"basic_auth": {"users": {"alice": "secret"}}}, f"{key}.users.alice",
            "invalid password hash: expected a password hash", at,
        )
        self.assertError(
            p, {"basic_auth": {"users": {"alice": ALICE.replace("$10000$", "$100$")}}},
            f"{key}.users.alice", "iterations must be from", at,
        )
        self.assertError(
            p, {"basic_auth": {"users": {"alice": 1}}}, f"{key}.users.alice",
            "expected a string", at,
        )
        self.assertError(
            p, {"basic_auth": {"users": {"a:b": ALICE}}}, f'{key}.users."a:b"',
            'without ":"', at,
        )
        self.assertError(
            p, {"basic_auth": {"users": {"": ALICE}}}, f'{key}.users.""', "non-empty", at,
        )

    def test_unknownKey(self) -> None:
        """
        Misspelt keys are named, with a suggestion.
        """
        self.assertError(
            parse_access, {"alow": []}, "routes[2].access.alow", 'did you mean "allow"?',
            "routes[2].access",
        )


class CorsTests(EdgeConfigTestCase):
    """
    Tests for L{parse_cors}.
    """

    def test_defaults(self) -> None:
        """
        Only the origins are required.
        """
        self.assertEqual(
            parse_cors({"origins": ["*"]}, "c", reader),
            CorsConfig(
                origins=("*",),
                methods=("GET", "HEAD", "POST"),
                headers=(),
                credentials=False,
                max_age=600,
                expose_headers=(),
            ),
        )

    def test_originsNormalized(self) -> None:
        """
        Origins are compared as browsers send them: lower case, without
        the scheme's default port.
        """
        config = parse_cors(
            {
                "origins": [
                    "HTTPS://App.Example",
                    "https://app.example:8443",
                    "http://app.example:80",
                    "http://[2001:DB8::1]:8080",
                    "http://127.0.0.1:3000",
                ]
            },
            "c",
            reader,
        )
        self.assertEqual(
            config.origins,
            (
                "https://app.example",
                "https://app.example:8443",
                "http://app.example",
                "http://[2001:db8::1]:8080",
                "http://127.0.0.1:3000",
            ),
        )

    def test_originErrors(self) -> None:
        """
        Bad origins are named by their index.
        """
        at = "routes[2].cors"
        p = parse_cors
        for origin, reason in [
            ("app.example", "invalid origin"),
            ("https://app.example/", "must not have a path"),
            ("https://app.example/x", "must not have a path"),
            ("https://app.example?x", "must not have a path"),
            ("https://*.example", 'only exact origins or "*"'),
            ("https://", "empty host"),
            ("https://app.example:", "invalid port"),
            ("https://app.example:0", "invalid port"),
            ("https://app.example:70000", "invalid port"),
            ("https://[nope]", "invalid IPv6"),
            ("https://bad_host!", "invalid host name"),
            ("null", '"null" origin'),
            ("https://user@app.example", "invalid origin"),
        ]:
            self.assertError(p, {"origins": [origin]}, f"{at}.origins[0]", reason, at)
        self.assertError(p, {}, f"{at}.origins", "required key is missing", at)
        self.assertError(p, {"origins": []}, f"{at}.origins", "must not be empty", at)
        self.assertError(
            p, {"origins": ["https://a.example", "*"]}, f"{at}.origins[1]",
            "cannot be listed with others", at,
        )
        self.assertError(
            p, {"origins": ["https://a.example", "HTTPS://A.example:443"]}, f"{at}.origins[1]",
            "listed twice", at,
        )

    def test_wildcardWithCredentials(self) -> None:
        """
        A wildcard origin cannot come with credentials.
        """
        self.assertError(
            parse_cors, {"origins": ["*"], "credentials": True}, "cors.credentials",
            'cannot be true with origins = ["*"]', "cors",
        )

    def test_otherErrors(self) -> None:
        """
        Bad values of the other keys are named.
        """
        at = "cors"
        p = parse_cors
        ok = {"origins": ["https://a.example"]}
        self.assertError(p, {**ok, "credentials": "yes"}, "cors.credentials", "expected a boolean", at)
        self.assertError(p, {**ok, "max_age": -1}, "cors.max_age", "from 0 to 86400", at)
        self.assertError(p, {**ok, "max_age": 86401}, "cors.max_age", "from 0 to 86400", at)
        self.assertError(p, {**ok, "methods": ["get"]}, "cors.methods[0]", "not upper case", at)
        self.assertError(p, {**ok, "headers": ["X Y"]}, "cors.headers[0]", "invalid header name", at)
        self.assertError(
            p, {**ok, "expose_headers": ["ok", "a:b"]}, "cors.expose_headers[1]",
            "invalid header name", at,
        )
        self.assertError(
            p, {**ok, "credentials": True, "expose_headers": ["*"]}, "cors.expose_headers[0]",
            "list the headers", at,
        )
        self.assertError(p, {**ok, "origin": []}, "cors.origin", 'did you mean "origins"?', at)

    def test_wildcards(self) -> None:
        """
        Wildcards are accepted for methods, headers and exposed headers.
        """
        config = parse_cors(
            {"origins": ["*"], "methods": ["*"], "headers": ["*"], "expose_headers": ["*"]},
            "c", reader,
        )
        self.assertEqual(
            (config.methods, config.headers, config.expose_headers), (("*",), ("*",), ("*",))
        )

    def test_emptyHeaders(self) -> None:
        """
        Empty header lists are accepted.
        """
        config = parse_cors({"origins": ["*"], "headers": [], "expose_headers": []}, "c", reader)
        self.assertEqual((config.headers, config.expose_headers), ((), ()))


class HeaderRulesConfigTests(EdgeConfigTestCase):
    """
    Tests for L{parse_header_rules}.
    """

    def test_all(self) -> None:
        """
        Every rule list parses, in file order.
        """
        config = parse_header_rules(
            {
                "request_set": {"X-Real-IP": "{client_ip}", "X-Request-Id": "{request_id}"},
                "request_add": {"X-Tag": ["a", "{{literal}}"]},
                "request_remove": ["X-Debug"],
                "response_set": {"X-Frame-Options": "DENY"},
                "response_add": {"X-Served-By": "{pool} {target}"},
                "response_remove": ["Server", "X-Powered-By"],
            },
            "routes[0].headers",
            reader,
        )
        self.assertEqual(
            config,
            HeaderRulesConfig(
                request_set=(("X-Real-IP", "{client_ip}"), ("X-Request-Id", "{request_id}")),
                request_add=(("X-Tag", "a"), ("X-Tag", "{{literal}}")),
                request_remove=("X-Debug",),
                response_set=(("X-Frame-Options", "DENY"),),
                response_add=(("X-Served-By", "{pool} {target}"),),
                response_remove=("Server", "X-Powered-By"),
            ),
        )

    def test_errors(self) -> None:
        """
        Each mistake is named by its key path.
        """
        at = "routes[2].headers"
        p = parse_header_rules
        self.assertError(
            p, {"request_set": {"X-Env": "{env}"}}, f"{at}.request_set.X-Env",
            "unknown variable {env}", at,
        )
        self.assertError(
            p, {"request_set": {"X-Env": "{client_ip"}}, f"{at}.request_set.X-Env",
            "unmatched", at,
        )
        self.assertError(
            p, {"response_add": {"X-A": ["ok", "{nope}"]}}, f"{at}.response_add.X-A[1]",
            "unknown variable", at,
        )
        self.assertError(
            p, {"response_add": {"X-A": ["ok", 1]}}, f"{at}.response_add.X-A[1]",
            "expected a string or an array of strings", at,
        )
        self.assertError(
            p, {"response_set": {"X-A": ["a"]}}, f"{at}.response_set.X-A",
            "expected a string, got an array", at,
        )
        self.assertError(
            p, {"request_set": {"X Env": "x"}}, f'{at}.request_set."X Env"',
            "invalid header name", at,
        )
        self.assertError(
            p, {"request_set": {"X-A": "1", "x-a": "2"}}, f"{at}.request_set.x-a",
            'also given as "X-A"', at,
        )
        self.assertError(
            p, {"request_remove": ["Server", "Content-Length"]}, f"{at}.request_remove[1]",
            "managed by lbproxy", at,
        )
        self.assertError(
            p, {"response_set": {"Transfer-Encoding": "chunked"}},
            f"{at}.response_set.Transfer-Encoding", "managed by lbproxy", at,
        )
        self.assertError(
            p, {"request_add": {"Host": "x"}}, f"{at}.request_add.Host", "use request_set", at
        )
        self.assertError(
            p, {"request_remove": ["host"]}, f"{at}.request_remove[0]", "cannot be removed", at
        )
        self.assertError(
            p, {"request_set": {"X-A": "a\nb"}}, f"{at}.request_set.X-A", "control character", at
        )
        self.assertError(p, {"request_set": []}, f"{at}.request_set", "expected a table", at)
        self.assertError(p, {"request_remove": "X"}, f"{at}.request_remove", "expected an array", at)
        self.assertError(p, {"request_remove": [1]}, f"{at}.request_remove[0]", "expected a string", at)
        self.assertError(p, {"request_sett": {}}, f"{at}.request_sett", 'did you mean "request_set"?', at)

    def test_hostSet(self) -> None:
        """
        A request's Host may be set.
        """
        config = parse_header_rules({"request_set": {"Host": "backend"}}, "h", reader)
        self.assertEqual(config.request_set, (("Host", "backend"),))


class ClientAddressConfigTests(EdgeConfigTestCase):
    """
    Tests for L{parse_trusted_proxies} and L{parse_forwarded_header}.
    """

    def test_empty(self) -> None:
        """
        An empty list trusts nobody.
        """
        self.assertEqual(parse_trusted_proxies([], "trusted_proxies", reader), ())

    def test_errors(self) -> None:
        """
        Bad trusted proxies are named by their index.
        """
        at = "server.trusted_proxies"
        p = parse_trusted_proxies
        self.assertError(p, "10.0.0.0/8", at, "expected an array", at)
        self.assertError(p, ["10.0.0.0/8", "10.0.0.0/33"], f"{at}[1]", "invalid network", at)
        self.assertError(p, ["192.168.1.1/24"], f"{at}[0]", 'did you mean "192.168.1.0/24"?', at)

    def test_forwardedHeader(self) -> None:
        """
        The header name is case-insensitive and one of two.
        """
        self.assertEqual(parse_forwarded_header("Forwarded", "h", reader), "forwarded")
        self.assertEqual(parse_forwarded_header("x-forwarded-for", "h", reader), "x-forwarded-for")
        self.assertError(parse_forwarded_header, "x-real-ip", "h", "expected one of", "h")
        self.assertError(parse_forwarded_header, 1, "h", "expected a string", "h")
