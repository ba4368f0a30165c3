# -*- test-case-name: tests.test_tls_config -*-
"""
The TLS parts of the configuration: the C{[tls]} table (the HTTPS
listener and its certificates) and a pool's upstream TLS keys (C{ca},
C{verify}, C{client_cert}, C{client_key}, C{server_name}).

Pure, like the rest of L{lbproxy.config}: strings and tables in, frozen
values out.  Nothing here reads a certificate; file names are only resolved
against the configuration file's directory
(L{lbproxy.config.reader.Reader.file}).
L{lbproxy.tls.edge.load_tls_material} reads them at start-up and on SIGHUP.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Protocol, Sequence, Tuple, TypeVar

from lbproxy.config.errors import child_key, describe, quote
from lbproxy.config.passthrough import parse_passthrough
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import hostname_problem

__all__ = [
    "ALPN_PROTOCOLS",
    "CertificateFiles",
    "POOL_TLS_KEYS",
    "TLSConfig",
    "TLS_VERSIONS",
    "UpstreamTLS",
    "parse_pool_tls",
    "parse_tls",
]

#: The values accepted for C{tls.min_version}.
TLS_VERSIONS: Tuple[str, ...] = ("1.2", "1.3")

#: The protocols C{tls.alpn} may list, in lbproxy's order of preference.
ALPN_PROTOCOLS: Tuple[str, ...] = ("h2", "http/1.1")

#: Keys of C{[pools.NAME]} about TLS to the pool's C{https://} targets.
POOL_TLS_KEYS: Tuple[str, ...] = ("ca", "client_cert", "client_key", "server_name", "verify")

_TLS_KEYS = (
    "alpn",
    "certificates",
    "hsts",
    "listen",
    "min_version",
    "passthrough",
    "redirect_http",
    "redirect_port",
)
_CERTIFICATE_KEYS = ("cert", "key", "self_signed")
_HSTS = re.compile(
    r"^max-age=[0-9]{1,10}(\s*;\s*(includesubdomains|preload))*\s*;?$", re.IGNORECASE
)
_ENDPOINT_FIELDS = re.compile(r"(?<!\\):")


class _TargetLike(Protocol):
    """
    What L{parse_pool_tls} needs of a target: a
    L{lbproxy.config.targets.Target} (a dataclass whose C{tls} is an
    L{UpstreamTLS}; that module imports this one).
    """

    @property
    def scheme(self) -> str: ...


_Target = TypeVar("_Target", bound=_TargetLike)


@dataclass(frozen=True)
class CertificateFiles:
    """
    One C{[[tls.certificates]]} entry.

    @ivar cert: PEM file with the certificate, then its intermediates.
    @ivar key: PEM file with the certificate's (unencrypted) private key.
    @ivar self_signed: Names (DNS names or IP addresses) for a self-signed
        certificate that lbproxy generates into C{cert} and C{key} when both
        files are missing; empty for a certificate that must exist.
    """

    cert: str
    key: str
    self_signed: Tuple[str, ...] = ()


@dataclass(frozen=True)
class TLSConfig:
    """
    The C{[tls]} table: HTTPS listeners and how they behave.

    @ivar listen: Plain Twisted server endpoint strings (C{"tcp:8443"});
        lbproxy speaks TLS on them itself.
    @ivar certificates: At least one; the first is the default, used when
        the client's server name (SNI) matches no certificate or is absent.
    @ivar min_version: The lowest TLS version accepted, C{"1.2"} or
        C{"1.3"}.
    @ivar alpn: Application protocols offered through ALPN, in order of
        preference, from L{ALPN_PROTOCOLS}.
    @ivar redirect_http: Whether the plain C{server.listen} listeners answer
        every request with a C{308} redirect to the HTTPS URL.
    @ivar redirect_port: The port redirects point to (omitted from the URL
        when it is 443), or L{None} when C{redirect_http} is off.
    @ivar hsts: The C{Strict-Transport-Security} value sent with every
        HTTPS response, or L{None}.
    @ivar passthrough: C{(server name, pool)} pairs: connections whose
        ClientHello names one are relayed undecrypted to the pool
        (L{lbproxy.config.passthrough}).
    """

    listen: Tuple[str, ...] = ("tcp:8443",)
    certificates: Tuple[CertificateFiles, ...] = ()
    min_version: str = "1.2"
    alpn: Tuple[str, ...] = ALPN_PROTOCOLS
    redirect_http: bool = False
    redirect_port: Optional[int] = None
    hsts: Optional[str] = None
    passthrough: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class UpstreamTLS:
    """
    How lbproxy speaks TLS to a pool's C{https://} targets, when the pool
    says more than the defaults (L{None} on a L{lbproxy.config.targets.Target}
    means: verify against the system's trust store, no client certificate,
    the target's host as server name).

    @ivar verify: Whether the target's certificate is verified (chain and
        name).  Off only when written C{verify = false}.
    @ivar ca: PEM file of the certificate authorities to trust instead of
        the system's, or L{None}.
    @ivar client_cert: PEM certificate (and chain) presented to targets
        that ask for one (mutual TLS), or L{None}.
    @ivar client_key: The private key of C{client_cert}.
    @ivar server_name: The name sent as SNI and verified in the target's
        certificate instead of the target's host, or L{None}.
    """

    verify: bool = True
    ca: Optional[str] = None
    client_cert: Optional[str] = None
    client_key: Optional[str] = None
    server_name: Optional[str] = None


def parse_tls(
    value: Any, key: str, reader: Reader, used: Mapping[str, str]
) -> TLSConfig:
    """
    Validate the C{[tls]} table.

    @param used: Endpoint strings already listened on (C{server.listen},
        C{[[demo]]}), mapped to the key that names them.
    """
    table = reader.table(value, key, _TLS_KEYS)
    settings: Dict[str, Any] = {}

    listen_key = child_key(key, "listen")
    listen = TLSConfig.listen
    raw = table.get("listen")
    indexed = isinstance(raw, (list, tuple))
    for index, item in enumerate(raw if indexed else [raw]):
        # Before the endpoint is built: an ssl: one would want its files.
        if not isinstance(item, str):
            continue
        kind = _ENDPOINT_FIELDS.split(item, 1)[0].strip().lower()
        if kind in ("ssl", "tls"):
            raise reader.fail(
                f"{listen_key}[{index}]" if indexed else listen_key,
                f"{quote(item)} is a TLS endpoint already; give a "
                'plain one such as "tcp:8443", lbproxy adds TLS itself',
            )
    if "listen" in table:
        listen = reader.listen(raw, listen_key)
    for index, description in enumerate(listen):
        item_key = f"{listen_key}[{index}]" if indexed else listen_key
        if description in used:
            raise reader.fail(
                item_key,
                f"endpoint {quote(description)} is already used by {used[description]}",
            )
    settings["listen"] = tuple(listen)

    certificates_key = child_key(key, "certificates")
    entries = reader.array(
        reader.required(table, key, "certificates"),
        certificates_key,
        '[[tls.certificates]] tables with cert and key',
    )
    if not entries:
        raise reader.fail(certificates_key, "at least one certificate is required")
    certificates: List[CertificateFiles] = []
    for index, entry in enumerate(entries):
        certificates.append(_certificate(entry, f"{certificates_key}[{index}]", reader))
    settings["certificates"] = tuple(certificates)

    if "min_version" in table:
        version = table["min_version"]
        if not isinstance(version, str) or version not in TLS_VERSIONS:
            raise reader.fail(
                child_key(key, "min_version"),
                f'must be "1.2" or "1.3" (a string), got {describe(version)}',
            )
        settings["min_version"] = version

    if "alpn" in table:
        settings["alpn"] = _alpn(table["alpn"], child_key(key, "alpn"), reader)

    if "passthrough" in table:
        settings["passthrough"] = parse_passthrough(
            table["passthrough"], child_key(key, "passthrough"), reader
        )

    if "hsts" in table:
        hsts_key = child_key(key, "hsts")
        hsts = reader.nonempty_string(table["hsts"], hsts_key).strip()
        if not _HSTS.match(hsts):
            raise reader.fail(
                hsts_key,
                f"invalid Strict-Transport-Security value {quote(hsts)} "
                '(expected "max-age=SECONDS", optionally followed by '
                '"; includeSubDomains" and "; preload")',
            )
        settings["hsts"] = hsts

    redirect = False
    if "redirect_http" in table:
        redirect = reader.boolean(table["redirect_http"], child_key(key, "redirect_http"))
    settings["redirect_http"] = redirect
    port_key = child_key(key, "redirect_port")
    if "redirect_port" in table:
        settings["redirect_port"] = reader.integer(table["redirect_port"], port_key, 1, 65535)
        if not redirect:
            raise reader.fail(port_key, "has no effect without redirect_http = true")
    elif redirect:
        port = endpoint_port(listen[0])
        if port is None:
            raise reader.fail(
                port_key,
                f"required with redirect_http: the port of {quote(listen[0])} "
                "cannot be told from the endpoint string",
            )
        settings["redirect_port"] = port
    return TLSConfig(**settings)


def _alpn(value: Any, key: str, reader: Reader) -> Tuple[str, ...]:
    items = reader.array(value, key, 'e.g. ["h2", "http/1.1"]')
    alpn: List[str] = []
    for index, item in enumerate(items):
        item_key = f"{key}[{index}]"
        name = reader.string(item, item_key)
        if name not in ALPN_PROTOCOLS:
            raise reader.fail(
                item_key,
                f"unknown protocol {quote(name)} (allowed: {', '.join(ALPN_PROTOCOLS)})",
            )
        if name in alpn:
            raise reader.fail(item_key, f"{quote(name)} is listed twice")
        alpn.append(name)
    if not alpn:
        raise reader.fail(key, 'at least one protocol is required (e.g. ["http/1.1"])')
    return tuple(alpn)


def _certificate(value: Any, key: str, reader: Reader) -> CertificateFiles:
    table = reader.table(value, key, _CERTIFICATE_KEYS)
    cert = reader.file(reader.required(table, key, "cert"), child_key(key, "cert"))
    private = reader.file(reader.required(table, key, "key"), child_key(key, "key"))
    if os.path.normpath(cert) == os.path.normpath(private):
        raise reader.fail(
            child_key(key, "key"),
            "must be a different file from cert (give the key in a file of its own)",
        )
    names: Tuple[str, ...] = ()
    if "self_signed" in table:
        names_key = child_key(key, "self_signed")
        items = reader.array(
            table["self_signed"], names_key, 'e.g. ["localhost", "127.0.0.1"]'
        )
        if not items:
            raise reader.fail(names_key, "at least one name is required")
        names = tuple(
            _certificate_name(item, f"{names_key}[{index}]", reader)
            for index, item in enumerate(items)
        )
    return CertificateFiles(cert=cert, key=private, self_signed=names)


def _certificate_name(value: Any, key: str, reader: Reader) -> str:
    """
    A name for a generated certificate: a DNS name (C{"*."} allowed as the
    first label), or an IPv4 or IPv6 address.
    """
    text = reader.nonempty_string(value, key).strip().lower()
    literal = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    name = text[:-1] if text.endswith(".") else text
    rest = name[2:] if name.startswith("*.") else name
    problem = hostname_problem(rest) if "*" not in rest else "only a leading \"*.\" is allowed"
    if problem:
        raise reader.fail(key, f"invalid name {quote(text)}: {problem}")
    return name


def endpoint_port(description: str) -> Optional[int]:
    """
    The port a C{tcp:} or C{tcp6:} server endpoint string listens on, or
    L{None} for other endpoint types.
    """
    fields = _ENDPOINT_FIELDS.split(description)
    if fields[0].strip().lower() not in ("tcp", "tcp6"):
        return None
    for field in fields[1:]:
        name, equals, value = field.partition("=")
        if equals:
            if name.strip() == "port":
                return _digits(value)
            continue
        return _digits(field)
    return None


def _digits(text: str) -> Optional[int]:
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() else None


def parse_pool_tls(
    table: Mapping[str, Any],
    key: str,
    reader: Reader,
    targets: Sequence[_Target],
) -> Tuple[_Target, ...]:
    """
    Apply a pool's TLS keys to its C{https://} targets.

    @param table: The C{[pools.NAME]} table.
    @param key: Its key path (C{"pools.NAME"}).
    @param targets: The pool's targets (L{lbproxy.config.targets.Target}).
    @return: C{targets}, the C{https://} ones carrying an L{UpstreamTLS}
        when the pool sets any TLS key to something but its default.
    """
    present = [name for name in POOL_TLS_KEYS if name in table]
    if not present:
        return tuple(targets)
    if not any(target.scheme == "https" for target in targets):
        raise reader.fail(
            child_key(key, present[0]),
            "no target of this pool uses https:// (TLS keys apply to "
            '"https://host:port" targets only)',
        )
    settings: Dict[str, Any] = {}
    if "verify" in table:
        settings["verify"] = reader.boolean(table["verify"], child_key(key, "verify"))
    if "ca" in table:
        settings["ca"] = reader.file(table["ca"], child_key(key, "ca"))
        if settings.get("verify") is False:
            raise reader.fail(
                child_key(key, "ca"),
                "has no effect with verify = false; remove one of them",
            )
    has_cert, has_key = "client_cert" in table, "client_key" in table
    if has_cert != has_key:
        missing = "client_key" if has_cert else "client_cert"
        raise reader.fail(
            child_key(key, missing),
            "required key is missing (client_cert and client_key go together)",
        )
    if has_cert:
        settings["client_cert"] = reader.file(
            table["client_cert"], child_key(key, "client_cert")
        )
        settings["client_key"] = reader.file(table["client_key"], child_key(key, "client_key"))
    if "server_name" in table:
        name_key = child_key(key, "server_name")
        name = reader.nonempty_string(table["server_name"], name_key).strip().lower()
        if name.endswith("."):
            name = name[:-1]
        problem = hostname_problem(name)
        if problem is None and name.replace(".", "").isdigit():
            problem = "must be a DNS name, not an IP address"
        if problem:
            raise reader.fail(name_key, f"invalid server name {quote(name)}: {problem}")
        settings["server_name"] = name
    upstream = UpstreamTLS(**settings)
    if upstream == UpstreamTLS():
        return tuple(targets)
    return tuple(
        replace(target, tls=upstream) if target.scheme == "https" else target  # type: ignore
        for target in targets
    )
