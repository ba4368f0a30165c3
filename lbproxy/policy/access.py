# -*- test-case-name: tests.test_access -*-
"""
The load balancer's firewall: which clients, paths and methods get through
to a backend, and basic authentication (RFC 7617).

Pure: no Twisted, no I/O.  Everything is compiled when a policy is built,
so that L{AccessPolicy.check}, called for every request, costs a cached
address parse, a few set lookups and, when basic authentication is on, one
SHA-256 of the C{Authorization} header (the KDF runs only the first time a
header value is seen).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Mapping, Optional, Sequence, Tuple, Union

from lbproxy.policy.passwd import PasswordHash, parse_hash, verify_password

__all__ = [
    "AccessPolicy",
    "BasicAuth",
    "Denial",
    "NetworkSet",
    "compile_network",
    "parse_ip",
]

Header = Tuple[bytes, bytes]
Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@lru_cache(maxsize=4096)
def parse_ip(text: str) -> Optional[Tuple[int, int]]:
    """
    Parse a client address once; repeated addresses come from a cache.

    @param text: An IPv4 or IPv6 address as a transport reports it
        (C{"10.0.0.1"}, C{"2001:db8::1"}, C{"fe80::1%eth0"}).
    @return: C{(4, value)} or C{(6, value)} with the address as an integer;
        an IPv4-mapped IPv6 address (C{"::ffff:10.0.0.1"}) gives its IPv4
        address.  L{None} when C{text} is not an address.
    """
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6:
        mapped = address.ipv4_mapped  # type: ignore[union-attr]
        if mapped is not None:
            return (4, int(mapped))
        return (6, int(address))
    return (4, int(address))


def compile_network(text: str) -> Network:
    """
    Parse one configured network.

    @param text: A CIDR (C{"10.0.0.0/8"}, C{"2001:db8::/32"}) or a single
        address (C{"10.1.2.3"}, meaning C{/32} or C{/128}).  A network
        inside C{::ffff:0:0/96} is turned into the IPv4 network it maps, as
        clients are compared by their IPv4 address.
    @raise ValueError: For anything else, including host bits set
        (C{"10.0.0.1/8"}) and IPv6 zones (C{"fe80::%eth0/64"}).
    """
    if "%" in text:
        raise ValueError(f"{text!r}: zone identifiers (%...) are not allowed")
    network = ipaddress.ip_network(text, strict=True)
    mapped = network.version == 6 and network.prefixlen >= 96
    if mapped and network.subnet_of(_MAPPED):  # type: ignore[arg-type]
        base = ipaddress.IPv4Address(int(network.network_address) & 0xFFFFFFFF)
        network = ipaddress.IPv4Network((base, network.prefixlen - 96))
    return network


class NetworkSet:
    """
    A compiled set of IPv4 and IPv6 networks.

    Networks are grouped by prefix length, each group a set of network
    numbers shifted right by the host bits, so membership is one shift and
    one set lookup per distinct prefix length, however many networks there
    are.

    @ivar networks: The networks, as given (after L{compile_network}).
    """

    def __init__(self, networks: Iterable[Union[str, Network]]) -> None:
        """
        @param networks: Networks or their strings (see L{compile_network}).
        @raise ValueError: For a string L{compile_network} refuses.
        """
        compiled = []
        groups = {4: {}, 6: {}}  # type: dict
        for item in networks:
            network = compile_network(item) if isinstance(item, str) else item
            compiled.append(network)
            bits = 32 if network.version == 4 else 128
            shift = bits - network.prefixlen
            groups[network.version].setdefault(shift, set()).add(
                int(network.network_address) >> shift
            )
        self.networks: Tuple[Network, ...] = tuple(compiled)
        # Longer prefixes first: no difference to the answer, but typical
        # lists are mostly single addresses and narrow networks.
        self._v4 = tuple((s, frozenset(n)) for s, n in sorted(groups[4].items()))
        self._v6 = tuple((s, frozenset(n)) for s, n in sorted(groups[6].items()))

    def __bool__(self) -> bool:
        return bool(self.networks)

    def __len__(self) -> int:
        return len(self.networks)

    def contains(self, parsed: Optional[Tuple[int, int]]) -> bool:
        """
        Whether a parsed address is in one of the networks.

        @param parsed: The result of L{parse_ip}; L{None} is in no network.
        """
        if parsed is None:
            return False
        version, value = parsed
        for shift, numbers in self._v4 if version == 4 else self._v6:
            if (value >> shift) in numbers:
                return True
        return False

    def __contains__(self, address: str) -> bool:
        """
        Whether an address string is in one of the networks.
        """
        return self.contains(parse_ip(address))


@dataclass(frozen=True)
class Denial:
    """
    Why a request is refused, and the response head to refuse it with.

    @ivar status: 401, 403 or 405.
    @ivar headers: Extra response headers (C{WWW-Authenticate}, C{Allow}).
    @ivar reason: A short reason for the access log, never sent to the
        client (C{"address denied"}, C{"bad password"}, ...).
    """

    status: int
    headers: Tuple[Header, ...]
    reason: str


_MAX_AUTHORIZATION = 4096


def _quoted_string(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return b'"' + escaped.encode("utf-8") + b'"'


class BasicAuth:
    """
    Basic authentication (RFC 7617) against hashed passwords.

    Credentials are decoded as UTF-8 (the challenge says
    C{charset="UTF-8"}) and normalized to NFC.  A successful verification
    is remembered in a bounded LRU cache keyed by the SHA-256 of the whole
    header value, so the KDF runs once per distinct credential rather than
    per request, and no plaintext password is kept.  Failures are not
    cached: they would only push good entries out.  An unknown user name
    costs a KDF too (against a dummy hash), so response timing does not tell
    which names exist.

    @ivar realm: The realm named in the challenge.
    @ivar users: User name to parsed hash.
    """

    def __init__(
        self, realm: str, users: Mapping[str, Union[str, PasswordHash]], cacheSize: int = 1024
    ) -> None:
        """
        @param users: User name to hash line (see L{lbproxy.policy.passwd}) or
            parsed hash.
        @param cacheSize: How many successful credentials are remembered.
        @raise ValueError: For a bad hash line or a user name with C{":"}.
        """
        self.realm = realm
        parsed = {}
        for name, stored in users.items():
            if ":" in name:
                raise ValueError(f"user name {name!r} contains ':'")
            parsed[unicodedata.normalize("NFC", name)] = (
                parse_hash(stored) if isinstance(stored, str) else stored
            )
        self.users: Mapping[str, PasswordHash] = parsed
        template = next(iter(parsed.values()), None)
        self._dummy = PasswordHash(
            iterations=template.iterations if template else 10_000,
            salt=b"lbproxy-dummy-salt",
            key=b"\0" * (len(template.key) if template else 32),
        )
        self._cacheSize = cacheSize
        self._cache: "OrderedDict[bytes, str]" = OrderedDict()
        challenge = b"Basic realm=" + _quoted_string(realm) + b', charset="UTF-8"'
        self._challenge: Tuple[Header, ...] = ((b"WWW-Authenticate", challenge),)
        self._denials = {
            reason: Denial(401, self._challenge, reason)
            for reason in (
                "no credentials",
                "malformed credentials",
                "unknown user",
                "bad password",
            )
        }

    def authenticate(self, authorization: Optional[bytes]) -> Union[str, Denial]:
        """
        Check an C{Authorization} header.

        @param authorization: The header value, or L{None} if absent.
        @return: The user name, or a 401 L{Denial} carrying the challenge.
        """
        if not authorization:
            return self._denials["no credentials"]
        digest = hashlib.sha256(authorization).digest()
        cache = self._cache
        user = cache.get(digest)
        if user is not None:
            cache.move_to_end(digest)
            return user
        credentials = self._decode(authorization)
        if credentials is None:
            return self._denials["malformed credentials"]
        name, password = credentials
        stored = self.users.get(name)
        if stored is None:
            verify_password(password, self._dummy)
            return self._denials["unknown user"]
        if not verify_password(password, stored):
            return self._denials["bad password"]
        cache[digest] = name
        if len(cache) > self._cacheSize:
            cache.popitem(last=False)
        return name

    @staticmethod
    def _decode(authorization: bytes) -> Optional[Tuple[str, str]]:
        """
        C{(user, password)} from C{"Basic base64(user:password)"}, or
        L{None} when it is not that.
        """
        if len(authorization) > _MAX_AUTHORIZATION:
            return None
        scheme, _, token = authorization.strip(b" \t").partition(b" ")
        if scheme.lower() != b"basic":
            return None
        token = token.strip(b" \t")
        try:
            decoded = base64.b64decode(token, validate=True)
            text = decoded.decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        name, colon, password = text.partition(":")
        if not colon or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            return None
        normalize = unicodedata.normalize
        return normalize("NFC", name), normalize("NFC", password)


class AccessPolicy:
    """
    The access rules of one route (or of the whole proxy).

    Rules apply in this order, the first that refuses wins:

      1. C{deny}: a client address in one of these networks gets 403;
      2. C{allow}: when given, a client address in none of them gets 403
         (so does a client address that cannot be parsed);
      3. C{blockedPaths}: a path equal to one of these prefixes or below it
         (on a segment boundary: C{"/admin"} blocks C{"/admin"} and
         C{"/admin/x"}, not C{"/administrator"}) gets 403;
      4. C{methods}: when given, any other method gets 405 with C{Allow}
         (C{HEAD} is allowed whenever C{GET} is);
      5. C{basicAuth}: a request without valid credentials gets 401 with
         C{WWW-Authenticate}.

    IPv4-mapped IPv6 clients (C{"::ffff:10.0.0.1"}) are compared as their
    IPv4 address.

    @ivar allow: The allowed networks (empty: every address).
    @ivar deny: The denied networks.
    @ivar blockedPaths: Normalized path prefixes.
    @ivar methods: The allowed methods, or L{None} for any.
    @ivar basicAuth: The authentication, or L{None}.
    """

    def __init__(
        self,
        allow: Iterable[Union[str, Network]] = (),
        deny: Iterable[Union[str, Network]] = (),
        blockedPaths: Sequence[str] = (),
        methods: Optional[Sequence[Union[str, bytes]]] = None,
        basicAuth: Optional[BasicAuth] = None,
    ) -> None:
        """
        @param blockedPaths: Path prefixes, normalized as request paths are
            (a trailing slash is ignored).
        @param methods: Method names (case-sensitive, as in RFC 9110).
        @raise ValueError: For a network L{compile_network} refuses.
        """
        self.allow = NetworkSet(allow)
        self.deny = NetworkSet(deny)
        prefixes = []
        for path in blockedPaths:
            if len(path) > 1 and path.endswith("/"):
                path = path.rstrip("/") or "/"
            prefixes.append(path)
        self.blockedPaths: Tuple[str, ...] = tuple(prefixes)
        # (exact, slashed) per prefix; "/" blocks everything.
        self._blocked = tuple(
            (p, "/" if p == "/" else p + "/") for p in self.blockedPaths
        )
        self.methods: Optional[Tuple[bytes, ...]] = None
        self._methods: Optional[frozenset] = None
        if methods is not None:
            names = [m.encode("ascii") if isinstance(m, str) else m for m in methods]
            if b"GET" in names and b"HEAD" not in names:
                names.insert(names.index(b"GET") + 1, b"HEAD")
            self.methods = tuple(names)
            self._methods = frozenset(names)
            allowHeader = b", ".join(names)
            self._methodDenial = Denial(
                405, ((b"Allow", allowHeader),), "method not allowed"
            )
        self.basicAuth = basicAuth
        self._denied = Denial(403, (), "address denied")
        self._notAllowed = Denial(403, (), "address not allowed")
        self._blockedDenial = Denial(403, (), "blocked path")

    def checkClient(self, clientIp: str, path: str) -> Optional[Denial]:
        """
        Rules 1 to 3 only: the address and path rules, which also apply to
        requests that skip the method and authentication rules (CORS
        preflights, which never carry credentials).

        @param clientIp: The client address (see
            L{lbproxy.policy.clientaddr.ClientAddressResolver}).
        @param path: The normalized request path, without query.
        @return: L{None} to let the request through, else why not.
        """
        if self.deny or self.allow:
            parsed = parse_ip(clientIp)
            if self.deny.contains(parsed):
                return self._denied
            if self.allow and not self.allow.contains(parsed):
                return self._notAllowed
        for exact, slashed in self._blocked:
            if path.startswith(slashed) or path == exact:
                return self._blockedDenial
        return None

    def check(
        self, clientIp: str, method: bytes, path: str, authorization: Optional[bytes]
    ) -> Optional[Denial]:
        """
        Apply every rule to a request.

        @param clientIp: The client address.
        @param method: The request method.
        @param path: The normalized request path, without query.
        @param authorization: The C{Authorization} header value, or L{None}.
        @return: L{None} to let the request through, else why not.
        """
        denial = self.checkClient(clientIp, path)
        if denial is not None:
            return denial
        if self._methods is not None and method not in self._methods:
            return self._methodDenial
        if self.basicAuth is not None:
            result = self.basicAuth.authenticate(authorization)
            if isinstance(result, Denial):
                return result
        return None
