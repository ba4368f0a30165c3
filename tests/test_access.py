"""
Tests for L{lbproxy.policy.access} and L{lbproxy.policy.passwd}.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import unicodedata
from typing import List, Optional

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.policy import access, passwd
from lbproxy.policy.access import (
    AccessPolicy,
    BasicAuth,
    Denial,
    NetworkSet,
    compile_network,
    parse_ip,
)
from lbproxy.policy.passwd import (
    MIN_ITERATIONS,
    PasswordHash,
    hash_password,
    parse_hash,
    verify_password,
)

# Hashed once, with the fewest iterations allowed, to keep tests fast.
ALICE_HASH = hash_password("wonderland", MIN_ITERATIONS, salt=b"alice-salt-16-by")
BOB_HASH = hash_password("builder", MIN_ITERATIONS, salt=b"bob-salt-16-byte")
CAROL_HASH = hash_password("caröl-pässword", MIN_ITERATIONS, salt=b"carol-salt-16-by")


def basic(credentials: str, scheme: bytes = b"Basic") -> bytes:
    """
    An C{Authorization} value for C{"user:password"}.
    """
    return scheme + b" " + base64.b64encode(credentials.encode("utf-8"))


class ParseIPTests(SynchronousTestCase):
    """
    Tests for L{parse_ip}.
    """

    def test_ipv4(self) -> None:
        """
        An IPv4 address is its 32-bit number.
        """
        self.assertEqual(parse_ip("10.0.0.1"), (4, 0x0A000001))

    def test_ipv6(self) -> None:
        """
        An IPv6 address is its 128-bit number.
        """
        self.assertEqual(parse_ip("2001:db8::1"), (6, int(ipaddress.IPv6Address("2001:db8::1"))))

    def test_mapped(self) -> None:
        """
        An IPv4-mapped IPv6 address is its IPv4 address.
        """
        self.assertEqual(parse_ip("::ffff:10.0.0.1"), (4, 0x0A000001))
        self.assertEqual(parse_ip("::ffff:a00:1"), (4, 0x0A000001))

    def test_scoped(self) -> None:
        """
        A link-local address with a zone is compared without its zone.
        """
        self.assertEqual(parse_ip("fe80::1%eth0"), parse_ip("fe80::1"))

    def test_notAnAddress(self) -> None:
        """
        Names, partial, out-of-range, zero-padded, bracketed or ported addresses are not addresses.
        """
        for text in ["", "localhost", "10.0.0", "10.0.0.256", "010.0.0.1", "[::1]", "1.2.3.4:80"]:
            self.assertIsNone(parse_ip(text), text)


class CompileNetworkTests(SynchronousTestCase):
    """
    Tests for L{compile_network}.
    """

    def test_cidr(self) -> None:
        """
        CIDRs are parsed as given.
        """
        self.assertEqual(str(compile_network("10.0.0.0/8")), "10.0.0.0/8")
        self.assertEqual(str(compile_network("2001:db8::/32")), "2001:db8::/32")

    def test_singleAddress(self) -> None:
        """
        A single address is a network of one.
        """
        self.assertEqual(str(compile_network("10.1.2.3")), "10.1.2.3/32")
        self.assertEqual(str(compile_network("2001:db8::1")), "2001:db8::1/128")

    def test_hostBits(self) -> None:
        """
        A CIDR with host bits set is refused.
        """
        self.assertRaises(ValueError, compile_network, "10.0.0.1/8")

    def test_zone(self) -> None:
        """
        A network with an IPv6 zone is refused.
        """
        self.assertRaises(ValueError, compile_network, "fe80::%eth0/64")

    def test_garbage(self) -> None:
        """
        Malformed networks are refused.
        """
        for text in ["", "10.0.0.0/33", "10/8", "example.com", "10.0.0.0/8/8"]:
            self.assertRaises(ValueError, compile_network, text)

    def test_mappedNetwork(self) -> None:
        """
        A network of IPv4-mapped addresses is the IPv4 network it maps.
        """
        self.assertEqual(str(compile_network("::ffff:10.0.0.0/104")), "10.0.0.0/8")
        self.assertEqual(str(compile_network("::ffff:10.1.2.3")), "10.1.2.3/32")


class NetworkSetTests(SynchronousTestCase):
    """
    Tests for L{NetworkSet}.
    """

    def test_ipv4Boundaries(self) -> None:
        """
        An IPv4 network holds exactly its range.
        """
        networks = NetworkSet(["10.0.0.0/8"])
        self.assertIn("10.0.0.0", networks)
        self.assertIn("10.255.255.255", networks)
        self.assertNotIn("11.0.0.0", networks)
        self.assertNotIn("9.255.255.255", networks)

    def test_ipv6(self) -> None:
        """
        An IPv6 network holds exactly its range, and no IPv4 address.
        """
        networks = NetworkSet(["2001:db8::/32"])
        self.assertIn("2001:db8:ffff::1", networks)
        self.assertNotIn("2001:db9::1", networks)
        self.assertNotIn("10.0.0.1", networks)

    def test_mappedClient(self) -> None:
        """
        An IPv4-mapped IPv6 client matches IPv4 networks, and only them.
        """
        self.assertIn("::ffff:10.0.0.1", NetworkSet(["10.0.0.0/8"]))
        self.assertNotIn("::ffff:10.0.0.1", NetworkSet(["::/0"]))

    def test_everything(self) -> None:
        """
        C{/0} networks hold every address of their family.
        """
        networks = NetworkSet(["0.0.0.0/0", "::/0"])
        self.assertIn("1.2.3.4", networks)
        self.assertIn("2001:db8::1", networks)

    def test_mixedPrefixes(self) -> None:
        """
        Networks of many prefix lengths and both families are matched.
        """
        networks = NetworkSet(
            ["10.1.2.3", "192.168.0.0/16", "172.16.0.0/12", "2001:db8::1", "fd00::/8"]
        )
        for address in ["10.1.2.3", "192.168.7.7", "172.31.255.1", "2001:db8::1", "fd12::5"]:
            self.assertIn(address, networks)
        for address in ["10.1.2.4", "192.169.0.1", "172.32.0.1", "2001:db8::2", "fe00::1"]:
            self.assertNotIn(address, networks)

    def test_empty(self) -> None:
        """
        An empty set is false and holds nothing.
        """
        networks = NetworkSet([])
        self.assertFalse(networks)
        self.assertEqual(len(networks), 0)
        self.assertNotIn("10.0.0.1", networks)

    def test_unparsable(self) -> None:
        """
        What is not an address is in no network.
        """
        self.assertNotIn("not an address", NetworkSet(["0.0.0.0/0"]))
        self.assertFalse(NetworkSet(["0.0.0.0/0"]).contains(None))

    def test_networkObjects(self) -> None:
        """
        Network objects are accepted as well as strings.
        """
        networks = NetworkSet([ipaddress.ip_network("10.0.0.0/8")])
        self.assertIn("10.9.9.9", networks)


class AccessPolicyTests(SynchronousTestCase):
    """
    Tests for L{AccessPolicy}.
    """

    def check(
        self,
        policy: AccessPolicy,
        clientIp: str = "10.0.0.1",
        method: bytes = b"GET",
        path: str = "/",
        authorization: Optional[bytes] = None,
    ) -> Optional[Denial]:
        return policy.check(clientIp, method, path, authorization)

    def test_emptyPolicyAllows(self) -> None:
        """
        A policy without rules lets everything through.
        """
        self.assertIsNone(self.check(AccessPolicy()))
        self.assertIsNone(self.check(AccessPolicy(), clientIp="garbage"))

    def test_deny(self) -> None:
        """
        A denied address (IPv4, IPv6 or mapped) gets 403; others pass.
        """
        policy = AccessPolicy(deny=["10.1.2.3", "2001:db8::/32"])
        denial = self.check(policy, clientIp="10.1.2.3")
        self.assertEqual(denial, Denial(403, (), "address denied"))
        self.assertEqual(self.check(policy, clientIp="2001:db8::5"), denial)
        self.assertEqual(self.check(policy, clientIp="::ffff:10.1.2.3"), denial)
        self.assertIsNone(self.check(policy, clientIp="10.1.2.4"))

    def test_allow(self) -> None:
        """
        Only allowed addresses (IPv4, IPv6 or mapped) pass.
        """
        policy = AccessPolicy(allow=["10.0.0.0/8", "2001:db8::/32"])
        self.assertIsNone(self.check(policy, clientIp="10.200.0.1"))
        self.assertIsNone(self.check(policy, clientIp="::ffff:10.200.0.1"))
        self.assertIsNone(self.check(policy, clientIp="2001:db8::1"))
        self.assertEqual(
            self.check(policy, clientIp="192.0.2.1"), Denial(403, (), "address not allowed")
        )
        self.assertEqual(self.check(policy, clientIp="2001:db9::1").reason, "address not allowed")

    def test_allowUnparsableClient(self) -> None:
        """
        With an allow list, a client address that cannot be parsed is
        refused; a deny list alone lets it through.
        """
        self.assertEqual(
            self.check(AccessPolicy(allow=["0.0.0.0/0"]), clientIp="").reason,
            "address not allowed",
        )
        self.assertIsNone(self.check(AccessPolicy(deny=["0.0.0.0/0"]), clientIp="unix"))

    def test_denyBeforeAllow(self) -> None:
        """
        An address both allowed and denied is denied.
        """
        policy = AccessPolicy(allow=["10.0.0.0/8"], deny=["10.1.0.0/16"])
        self.assertEqual(self.check(policy, clientIp="10.1.2.3").reason, "address denied")
        self.assertIsNone(self.check(policy, clientIp="10.2.0.1"))

    def test_blockedPathSegments(self) -> None:
        """
        A blocked path blocks itself and what is below it, on a segment
        boundary.
        """
        policy = AccessPolicy(blockedPaths=["/admin", "/.git/"])
        blocked = Denial(403, (), "blocked path")
        for path in ["/admin", "/admin/", "/admin/users", "/.git", "/.git/config"]:
            self.assertEqual(self.check(policy, path=path), blocked, path)
        for path in ["/", "/administrator", "/adm", "/x/admin", "/.github", "/Admin"]:
            self.assertIsNone(self.check(policy, path=path), path)

    def test_blockedRoot(self) -> None:
        """
        Blocking C{"/"} blocks every path.
        """
        policy = AccessPolicy(blockedPaths=["/"])
        self.assertEqual(self.check(policy, path="/anything").reason, "blocked path")
        self.assertEqual(self.check(policy, path="/").reason, "blocked path")

    def test_addressBeforePath(self) -> None:
        """
        Address rules come before path rules.
        """
        policy = AccessPolicy(deny=["10.0.0.0/8"], blockedPaths=["/admin"])
        self.assertEqual(self.check(policy, path="/admin").reason, "address denied")

    def test_methods(self) -> None:
        """
        Other methods get 405 with C{Allow}; C{HEAD} comes with C{GET}.
        """
        policy = AccessPolicy(methods=["GET", "POST"])
        self.assertEqual(policy.methods, (b"GET", b"HEAD", b"POST"))
        for method in [b"GET", b"HEAD", b"POST"]:
            self.assertIsNone(self.check(policy, method=method))
        denial = self.check(policy, method=b"DELETE")
        self.assertEqual(
            denial, Denial(405, ((b"Allow", b"GET, HEAD, POST"),), "method not allowed")
        )
        self.assertEqual(self.check(policy, method=b"get"), denial)

    def test_headOnlyWithGet(self) -> None:
        """
        C{HEAD} is not allowed when C{GET} is not.
        """
        policy = AccessPolicy(methods=[b"POST"])
        self.assertEqual(self.check(policy, method=b"HEAD").status, 405)
        self.assertEqual(self.check(policy, method=b"HEAD").headers, ((b"Allow", b"POST"),))

    def test_headListedOnce(self) -> None:
        """
        C{HEAD} listed explicitly is not listed twice.
        """
        policy = AccessPolicy(methods=["HEAD", "GET"])
        self.assertEqual(policy.methods, (b"HEAD", b"GET"))

    def test_pathBeforeMethod(self) -> None:
        """
        Path rules come before method rules.
        """
        policy = AccessPolicy(blockedPaths=["/admin"], methods=["GET"])
        self.assertEqual(self.check(policy, method=b"PUT", path="/admin").status, 403)

    def test_methodBeforeAuth(self) -> None:
        """
        Method rules come before authentication.
        """
        policy = AccessPolicy(
            methods=["GET"], basicAuth=BasicAuth("staff", {"alice": ALICE_HASH})
        )
        self.assertEqual(self.check(policy, method=b"PUT").status, 405)
        self.assertEqual(self.check(policy).status, 401)
        self.assertIsNone(self.check(policy, authorization=basic("alice:wonderland")))

    def test_checkClient(self) -> None:
        """
        L{AccessPolicy.checkClient} applies the address and path rules
        only.
        """
        policy = AccessPolicy(
            deny=["10.9.0.0/16"],
            blockedPaths=["/admin"],
            methods=["GET"],
            basicAuth=BasicAuth("staff", {"alice": ALICE_HASH}),
        )
        self.assertIsNone(policy.checkClient("10.0.0.1", "/"))
        self.assertEqual(policy.checkClient("10.9.0.1", "/").reason, "address denied")
        self.assertEqual(policy.checkClient("10.0.0.1", "/admin/x").reason, "blocked path")

    def test_badNetwork(self) -> None:
        """
        Invalid networks are refused when the policy is built.
        """
        self.assertRaises(ValueError, AccessPolicy, allow=["10.0.0.1/8"])
        self.assertRaises(ValueError, AccessPolicy, deny=["nope"])


class CountingVerify:
    """
    Wraps L{verify_password}, counting KDF runs.
    """

    def __init__(self) -> None:
        self.calls: List[str] = []

    def __call__(self, password: str, stored: PasswordHash) -> bool:
        self.calls.append(password)
        return verify_password(password, stored)


class BasicAuthTests(SynchronousTestCase):
    """
    Tests for L{BasicAuth}.
    """

    def setUp(self) -> None:
        self.verify = CountingVerify()
        self.patch(access, "verify_password", self.verify)
        self.auth = BasicAuth("staff", {"alice": ALICE_HASH, "bob": BOB_HASH}, cacheSize=2)

    def assertDenied(self, result: object, reason: str) -> None:
        self.assertIsInstance(result, Denial)
        assert isinstance(result, Denial)
        self.assertEqual(result.status, 401)
        self.assertEqual(result.reason, reason)
        self.assertEqual(
            result.headers,
            ((b"WWW-Authenticate", b'Basic realm="staff", charset="UTF-8"'),),
        )

    def test_good(self) -> None:
        """
        Good credentials give the user name.
        """
        self.assertEqual(self.auth.authenticate(basic("alice:wonderland")), "alice")
        self.assertEqual(self.auth.authenticate(basic("bob:builder")), "bob")

    def test_schemeCaseInsensitive(self) -> None:
        """
        The scheme name is case-insensitive.
        """
        self.assertEqual(self.auth.authenticate(basic("alice:wonderland", b"bAsIc")), "alice")

    def test_extraSpaces(self) -> None:
        """
        Whitespace around the scheme and the token is ignored.
        """
        header = b"  Basic   " + base64.b64encode(b"alice:wonderland") + b" "
        self.assertEqual(self.auth.authenticate(header), "alice")

    def test_passwordWithColon(self) -> None:
        """
        The user name ends at the first colon; the password may hold more.
        """
        auth = BasicAuth("r", {"dave": hash_password("a:b:c", MIN_ITERATIONS)})
        self.assertEqual(auth.authenticate(basic("dave:a:b:c")), "dave")

    def test_badPassword(self) -> None:
        """
        A wrong password is refused with the challenge.
        """
        self.assertDenied(self.auth.authenticate(basic("alice:wrong")), "bad password")
        self.assertDenied(self.auth.authenticate(basic("alice:")), "bad password")
        self.assertDenied(self.auth.authenticate(basic("alice:builder")), "bad password")

    def test_unknownUser(self) -> None:
        """
        An unknown user is refused after a KDF run like any other, so
        timing does not tell which names exist.
        """
        self.assertDenied(self.auth.authenticate(basic("mallory:x")), "unknown user")
        self.assertEqual(self.verify.calls, ["x"])
        self.assertDenied(self.auth.authenticate(basic("Alice:wonderland")), "unknown user")

    def test_missing(self) -> None:
        """
        A missing header is refused with the challenge.
        """
        self.assertDenied(self.auth.authenticate(None), "no credentials")
        self.assertDenied(self.auth.authenticate(b""), "no credentials")

    def test_malformed(self) -> None:
        """
        Malformed headers are refused without running the KDF.
        """
        for header in [
            b"Basic",
            b"Basic ",
            b"Basic !!!!",
            b"Basic " + base64.b64encode(b"alice:wonderland")[:-2],
            b"Basic " + base64.b64encode(b"alicewonderland"),
            b"Basic " + base64.b64encode(b"alice:wonder\nland"),
            b"Basic " + base64.b64encode(b"alice:\x00"),
            b"Basic " + base64.b64encode(b"alice:\xff\xfe"),
            b"Bearer " + base64.b64encode(b"alice:wonderland"),
            b"Basicx " + base64.b64encode(b"alice:wonderland"),
            b"Digest username=alice",
            b"Basic " + b"A" * 5000,
        ]:
            self.assertDenied(self.auth.authenticate(header), "malformed credentials")
        self.assertEqual(self.verify.calls, [])

    def test_successCached(self) -> None:
        """
        A successful header is verified once, then answered from the cache.
        """
        header = basic("alice:wonderland")
        for _ in range(5):
            self.assertEqual(self.auth.authenticate(header), "alice")
        self.assertEqual(self.verify.calls, ["wonderland"])

    def test_failureNotCached(self) -> None:
        """
        Failed verifications run the KDF every time.
        """
        header = basic("alice:wrong")
        for _ in range(3):
            self.auth.authenticate(header)
        self.assertEqual(self.verify.calls, ["wrong"] * 3)

    def test_cacheBounded(self) -> None:
        """
        The cache holds C{cacheSize} headers, dropping the least recently
        used.
        """
        alice, bob = basic("alice:wonderland"), basic("bob:builder")
        alice2 = basic("alice:wonderland", b"basic")
        self.auth.authenticate(alice)
        self.auth.authenticate(bob)
        self.auth.authenticate(alice)
        self.auth.authenticate(alice2)  # evicts bob, the least recent
        self.assertEqual(len(self.verify.calls), 3)
        self.auth.authenticate(alice)
        self.auth.authenticate(alice2)
        self.assertEqual(len(self.verify.calls), 3)
        self.auth.authenticate(bob)
        self.assertEqual(len(self.verify.calls), 4)

    def test_cacheHoldsNoPlaintext(self) -> None:
        """
        The cache keeps digests of headers, not the headers.
        """
        header = basic("alice:wonderland")
        self.auth.authenticate(header)
        self.assertEqual(list(self.auth._cache), [hashlib.sha256(header).digest()])

    def test_unicodeNormalized(self) -> None:
        """
        User names and passwords are compared in NFC, whichever form the
        client sends.
        """
        name = unicodedata.normalize("NFD", "cäröl")
        auth = BasicAuth("r", {name: CAROL_HASH})
        for form in ["NFC", "NFD"]:
            credentials = unicodedata.normalize(form, "cäröl:caröl-pässword")
            self.assertEqual(auth.authenticate(basic(credentials)), "cäröl")

    def test_realmQuoted(self) -> None:
        """
        Quotes and backslashes in the realm are escaped in the challenge.
        """
        auth = BasicAuth('the "inner" \\ circle', {"alice": ALICE_HASH})
        denial = auth.authenticate(None)
        assert isinstance(denial, Denial)
        self.assertEqual(
            denial.headers[0][1],
            b'Basic realm="the \\"inner\\" \\\\ circle", charset="UTF-8"',
        )

    def test_parsedHashes(self) -> None:
        """
        Parsed hashes are accepted as well as hash lines.
        """
        auth = BasicAuth("r", {"alice": parse_hash(ALICE_HASH)})
        self.assertEqual(auth.authenticate(basic("alice:wonderland")), "alice")

    def test_invalid(self) -> None:
        """
        User names with a colon and bad hash lines are refused.
        """
        self.assertRaises(ValueError, BasicAuth, "r", {"a:b": ALICE_HASH})
        self.assertRaises(ValueError, BasicAuth, "r", {"alice": "plaintext"})


class PasswordHashTests(SynchronousTestCase):
    """
    Tests for L{lbproxy.policy.passwd}'s hashing.
    """

    def test_format(self) -> None:
        """
        A hash line is C{pbkdf2_sha256$ITERATIONS$SALT$HASH} with base64
        salt and PBKDF2-HMAC-SHA256 key.
        """
        salt = b"0123456789abcdef"
        line = hash_password("secret", 12345, salt=salt)
        key = hashlib.pbkdf2_hmac("sha256", b"secret", salt, 12345, 32)
        self.assertEqual(
            line,
            "pbkdf2_sha256$12345$"
            + base64.b64encode(salt).decode()
            + "$"
            + base64.b64encode(key).decode(),
        )

    def test_randomSalt(self) -> None:
        """
        Each hash gets a fresh 16-byte salt.
        """
        first, second = hash_password("x", MIN_ITERATIONS), hash_password("x", MIN_ITERATIONS)
        self.assertNotEqual(first, second)
        self.assertEqual(len(parse_hash(first).salt), 16)

    def test_roundTrip(self) -> None:
        """
        A hash line parses back to itself and verifies its password only.
        """
        stored = parse_hash(ALICE_HASH)
        self.assertEqual(stored.iterations, MIN_ITERATIONS)
        self.assertEqual(stored.format(), ALICE_HASH)
        self.assertTrue(verify_password("wonderland", stored))
        self.assertFalse(verify_password("Wonderland", stored))

    def test_nfc(self) -> None:
        """
        Passwords are hashed and verified in NFC.
        """
        stored = parse_hash(hash_password(unicodedata.normalize("NFD", "é"), MIN_ITERATIONS))
        self.assertTrue(verify_password(unicodedata.normalize("NFC", "é"), stored))

    def test_invalid(self) -> None:
        """
        Malformed hash lines are refused with a reason.
        """
        salt = base64.b64encode(b"s" * 16).decode()
        key = base64.b64encode(b"k" * 32).decode()
        for line, reason in [
            ("plaintext", "expected a password hash"),
            (f"sha1$10000${salt}${key}", "expected a password hash"),
            (f"pbkdf2_sha256$10000${salt}", "expected 4"),
            (f"pbkdf2_sha256$10000${salt}${key}$", "expected 4"),
            (f"pbkdf2_sha256$1e5${salt}${key}", "decimal"),
            (f"pbkdf2_sha256$010000${salt}${key}", "decimal"),
            (f"pbkdf2_sha256$-10000${salt}${key}", "decimal"),
            (f"pbkdf2_sha256$9999${salt}${key}", "from 10000"),
            (f"pbkdf2_sha256$2000001${salt}${key}", "from 10000"),
            (f"pbkdf2_sha256$10000$!!${key}", "salt is not valid base64"),
            (f"pbkdf2_sha256$10000$${key}", "empty salt"),
            (f"pbkdf2_sha256$10000$c2FsdA==${key}", "salt must be"),
            (f"pbkdf2_sha256$10000${salt}$a2V5", "hash must be"),
            (f"pbkdf2_sha256$10000${salt}$é", "hash is not valid base64"),
        ]:
            with self.assertRaises(ValueError, msg=line) as caught:
                parse_hash(line)
            self.assertIn(reason, str(caught.exception), line)


class TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


class PasswdMainTests(SynchronousTestCase):
    """
    Tests for C{python -m lbproxy.policy.passwd} (L{passwd.main}).
    """

    def main(self, argv: List[str], stdin: io.StringIO, answers: Optional[List[str]] = None):
        out, err = io.StringIO(), io.StringIO()
        prompts: List[str] = []

        def prompt(text: str) -> str:
            prompts.append(text)
            assert answers is not None
            return answers.pop(0)

        status = passwd.main(argv, stdin, out, err, prompt)
        return status, out.getvalue(), err.getvalue(), prompts

    def test_stdin(self) -> None:
        """
        When standard input is not a terminal, its first line is the
        password; one hash line is printed.
        """
        self.patch(passwd, "DEFAULT_ITERATIONS", MIN_ITERATIONS)
        status, out, err, _ = self.main([], io.StringIO("s3cret pass\r\nignored\n"))
        self.assertEqual((status, err), (0, ""))
        line = out.rstrip("\n")
        self.assertEqual(out, line + "\n")
        self.assertTrue(verify_password("s3cret pass", parse_hash(line)))

    def test_iterations(self) -> None:
        """
        C{--iterations} sets the iteration count, in both spellings.
        """
        for argv in (["--iterations", "20000"], ["--iterations=20000"]):
            status, out, _, _ = self.main(argv, io.StringIO("pw"))
            self.assertEqual(status, 0)
            self.assertEqual(parse_hash(out.strip()).iterations, 20000)

    def test_tty(self) -> None:
        """
        On a terminal the password is asked for twice.
        """
        status, out, _, prompts = self.main(
            ["--iterations", "10000"], TTY(), ["pw", "pw"]
        )
        self.assertEqual(status, 0)
        self.assertEqual(prompts, ["Password: ", "Again: "])
        self.assertTrue(verify_password("pw", parse_hash(out.strip())))

    def test_ttyMismatch(self) -> None:
        """
        Two different answers on a terminal print nothing and fail.
        """
        status, out, err, _ = self.main([], TTY(), ["pw", "pW"])
        self.assertEqual((status, out), (1, ""))
        self.assertIn("differ", err)

    def test_empty(self) -> None:
        """
        An empty password is refused.
        """
        status, out, err, _ = self.main([], io.StringIO("\n"))
        self.assertEqual((status, out), (1, ""))
        self.assertIn("empty", err)

    def test_badArguments(self) -> None:
        """
        Bad arguments exit with status 2 and print nothing.
        """
        for argv in (["--iterations"], ["--iterations", "x"], ["--iterations", "5"], ["-x"]):
            status, out, err, _ = self.main(argv, io.StringIO("pw"))
            self.assertEqual((status, out), (2, ""), argv)
            self.assertTrue(err, argv)

    def test_help(self) -> None:
        """
        C{--help} prints the usage.
        """
        status, out, _, _ = self.main(["--help"], io.StringIO(""))
        self.assertEqual(status, 0)
        self.assertIn("usage:", out)
