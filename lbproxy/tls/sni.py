# -*- test-case-name: tests.test_tls -*-
"""
Which certificate answers which server name, and which request hosts a
certificate covers.

Pure: names in, answers out; no OpenSSL, no I/O.  L{lbproxy.tls.contexts}
builds one L{SNIMap} of OpenSSL contexts per certificate generation and
asks it during every handshake.

Certificate names follow RFC 6125: a DNS name matches case-insensitively
and without a trailing dot; a wildcard C{*.example.com} stands for exactly
one whole label, so it covers C{a.example.com} but neither
C{example.com} nor C{a.b.example.com}.  IP addresses match the
certificate's IP address entries only.
"""

from __future__ import annotations

import ipaddress
from typing import Dict, Generic, Iterable, Optional, Sequence, Tuple, TypeVar

__all__ = ["CertificateNames", "SNIMap", "misdirected", "normalize_name"]

T = TypeVar("T")


def normalize_name(name: str) -> str:
    """
    A DNS name as compared: lower case, no trailing dot.  An IP address in
    its canonical text form (IPv6 without brackets).
    """
    name = name.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    literal = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        return name


def _ip(name: str) -> Optional[str]:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return None


class CertificateNames:
    """
    The names one certificate is valid for (its subjectAltName entries).

    @ivar exact: DNS names without wildcards.
    @ivar wildcards: Parent domains of C{*.} names: C{"example.com"} for
        C{"*.example.com"}.
    @ivar addresses: IP addresses, canonical text.
    """

    __slots__ = ("exact", "wildcards", "addresses")

    def __init__(self, dns: Iterable[str] = (), addresses: Iterable[str] = ()) -> None:
        """
        @param dns: DNS names as in the certificate, C{"*."} wildcards
            allowed as the whole first label.  Other wildcard forms
            (C{"f*.example.com"}) match nothing.
        @param addresses: IP addresses.
        """
        exact = set()
        wildcards = set()
        for name in dns:
            name = normalize_name(name)
            if name.startswith("*."):
                parent = name[2:]
                if parent and "*" not in parent:
                    wildcards.add(parent)
            elif "*" not in name and name:
                exact.add(name)
        self.exact = frozenset(exact)
        self.wildcards = frozenset(wildcards)
        self.addresses = frozenset(normalize_name(a) for a in addresses)

    def __repr__(self) -> str:
        names = sorted(self.exact) + ["*." + w for w in sorted(self.wildcards)]
        return f"<CertificateNames {names + sorted(self.addresses)}>"

    def __bool__(self) -> bool:
        return bool(self.exact or self.wildcards or self.addresses)

    def covers(self, host: str) -> bool:
        """
        Whether a request for C{host} may be answered with this certificate.

        @param host: A host name or IP address, without port.
        """
        host = normalize_name(host)
        if _ip(host) is not None:
            return host in self.addresses
        if host in self.exact:
            return True
        label, dot, parent = host.partition(".")
        return bool(dot and label and parent in self.wildcards)


class SNIMap(Generic[T]):
    """
    Chooses the certificate for a TLS server name.

    Every server name is looked up as an exact name across all
    certificates first, then as a wildcard match; among certificates that
    match equally, the first configured wins.  A name that nothing matches,
    or no server name at all, gets the default: the first certificate.
    """

    def __init__(self, entries: Sequence[Tuple[CertificateNames, T]]) -> None:
        """
        @param entries: C{(names, value)} pairs in configuration order; at
            least one.
        @raise ValueError: If C{entries} is empty.
        """
        if not entries:
            raise ValueError("SNIMap needs at least one certificate")
        self.default: T = entries[0][1]
        self._exact: Dict[str, T] = {}
        self._wildcards: Dict[str, T] = {}
        for names, value in entries:
            for name in names.exact:
                self._exact.setdefault(name, value)
            for parent in names.wildcards:
                self._wildcards.setdefault(parent, value)

    def select(self, serverName: Optional[str]) -> T:
        """
        The value for a handshake that asked for C{serverName}.

        @param serverName: The SNI host name, or L{None} if the client sent
            none.
        """
        found = self.match(serverName)
        return self.default if found is None else found

    def match(self, serverName: Optional[str]) -> Optional[T]:
        """
        Like L{select}, but L{None} instead of the default when no
        certificate names C{serverName}.
        """
        if not serverName:
            return None
        name = normalize_name(serverName)
        found = self._exact.get(name)
        if found is not None:
            return found
        label, dot, parent = name.partition(".")
        if dot and label:
            return self._wildcards.get(parent)
        return None


def misdirected(
    serverName: Optional[str], names: CertificateNames, host: Optional[str]
) -> bool:
    """
    Whether a request must be refused with C{421 Misdirected Request}: its
    connection asked for one name (SNI) and got a certificate that does not
    cover the request's host, so the request was meant for another
    certificate's connection (domain fronting).

    Without SNI, or without a host, or when the host is the server name
    itself, the host decides as on plain HTTP.

    @param serverName: The connection's SNI name, or L{None}.
    @param names: The names of the certificate the connection uses.
    @param host: The request's host (no port), or L{None}.
    """
    if not serverName or not host:
        return False
    if normalize_name(serverName) == normalize_name(host):
        return False
    return not names.covers(host)
