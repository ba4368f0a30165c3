# -*- test-case-name: tests.test_headers -*-
"""
Header policy between client and backend: what is hop-by-hop and stays
behind, and what a proxy adds (C{X-Forwarded-*}).

Pure functions over lists of C{(name, value)} byte pairs; no Twisted.
Names are compared case-insensitively; values are passed through unchanged.
"""

from __future__ import annotations

import re
from typing import FrozenSet, Iterable, List, Optional, Sequence, Set, Tuple

HeaderList = List[Tuple[bytes, bytes]]

#: Headers that describe one connection, never the message (RFC 9110 7.6.1),
#: plus the framing headers that lbproxy always writes itself.
HOP_BY_HOP = frozenset(
    [
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    ]
)

#: Framing is lbproxy's own on each side: the length of a re-framed body is
#: written by the side that sends it.
FRAMING = frozenset([b"content-length"])

_DROP_ALWAYS = HOP_BY_HOP | FRAMING

#: A control character that may not appear in a field value (RFC 9110 5.5:
#: only HTAB, visible ASCII, SP and obs-text): 0x00-0x1f but HTAB, and DEL.
#: CR and LF are left out, so that the pattern can also run over a whole
#: head, whose lines they end (bare ones are looked for separately).
FIELD_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: What a client sends that is never forwarded, whatever C{Connection}
#: says: hop-by-hop and framing fields, and C{Expect} (lbproxy answers it).
REQUEST_DROP = _DROP_ALWAYS | frozenset([b"expect"])

# The values of Connection most requests send, so that they cost a lookup.
_COMMON_CONNECTION = {
    b"keep-alive": REQUEST_DROP,
    b"Keep-Alive": REQUEST_DROP,
    b"close": REQUEST_DROP | frozenset([b"close"]),
    b"Close": REQUEST_DROP | frozenset([b"close"]),
}


def connection_tokens(values: Iterable[bytes]) -> Set[bytes]:
    """
    The header names listed by C{Connection} header values.

    @param values: the raw values of every C{Connection} header.
    @return: lower-cased tokens, e.g. C{{b"close", b"x-drop"}}.
    """
    tokens = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip().lower()
            if token:
                tokens.add(token)
    return tokens


def request_drop_names(connection: Optional[Sequence[bytes]]) -> FrozenSet[bytes]:
    """
    The lower-cased names of the client's fields that are not forwarded:
    L{REQUEST_DROP} and every name its C{Connection} fields list, except
    C{Host}.  (Every C{Proxy-*} field, and every name with C{"_"}, are not
    forwarded either; the caller tests those.)

    @param connection: the raw values of every C{Connection} field, or
        L{None} if there is none.
    """
    if connection is None:
        return REQUEST_DROP
    if len(connection) == 1:
        common = _COMMON_CONNECTION.get(connection[0])
        if common is not None:
            return common
    named = connection_tokens(connection)
    # Connection may not remove what routing and the backend rely on.
    named.discard(b"host")
    return REQUEST_DROP | named


def asks_upgrade(connection: Sequence[bytes]) -> bool:
    """
    Whether C{Connection} lists C{upgrade} (a request to switch protocols,
    RFC 9110 7.8).

    @param connection: the raw values of every C{Connection} field.
    """
    if len(connection) == 1 and connection[0] in _COMMON_CONNECTION:
        return False
    return b"upgrade" in connection_tokens(connection)


def upgrade_value(upgrade: Optional[Sequence[bytes]]) -> Optional[bytes]:
    """
    The C{Upgrade} value to forward for a request whose C{Connection}
    lists C{upgrade}, or L{None} when it does not upgrade after all: no
    C{Upgrade} field, an empty one, or C{h2c} (HTTP/2 over cleartext,
    which lbproxy does not relay; the request goes on as HTTP/1.1 without
    its C{Upgrade}).

    @param upgrade: the raw values of every C{Upgrade} field, or L{None}.
    """
    if not upgrade:
        return None
    value = b", ".join(v.strip() for v in upgrade if v.strip())
    if not value:
        return None
    for token in value.split(b","):
        name = token.strip().split(b"/", 1)[0].lower()
        if not name or name == b"h2c":
            return None
    return value


def end_to_end(headers: Iterable[Tuple[bytes, bytes]]) -> HeaderList:
    """
    Drop hop-by-hop headers: the fixed list, every C{Proxy-*} header,
    C{Content-Length}, and any header named by C{Connection}.

    @param headers: C{(name, value)} pairs as received, in order.
    @return: the pairs to forward, in the same order.
    """
    pairs = list(headers)
    named: Set[bytes] = set()
    for name, value in pairs:
        if name.lower() == b"connection":
            named |= connection_tokens([value])
    # Connection may not remove what routing and the backend rely on.
    named.discard(b"host")
    kept = []
    for name, value in pairs:
        lower = name.lower()
        if lower in _DROP_ALWAYS or lower in named or lower.startswith(b"proxy-"):
            continue
        kept.append((name, value))
    return kept


def forwarded_request_headers(
    headers: Iterable[Tuple[bytes, bytes]],
    peer_ip: bytes,
    proto: bytes,
    host: Optional[bytes],
    trusted: bool = False,
) -> HeaderList:
    """
    The headers a backend receives for a client request.

    C{headers} are end-to-end already: the client's hop-by-hop fields were
    dropped when its headers were scanned (L{request_drop_names}), before
    lbproxy added its own (header rules, the request id), so that a client
    cannot name those in C{Connection} to strip them.  What a client says
    about where a request came from is believed only from a trusted proxy:

      - from a trusted peer, C{X-Forwarded-For} gets the peer appended (one
        combined header), and an incoming C{X-Forwarded-Proto},
        C{X-Forwarded-Host} or C{Forwarded} is kept (the trusted proxy set
        them);
      - from any other peer, incoming C{X-Forwarded-*} and C{Forwarded} are
        replaced: C{X-Forwarded-For} is the peer alone.

    C{X-Forwarded-Proto} and C{X-Forwarded-Host} are set to what this proxy
    saw when not kept. C{Host} is passed on unchanged.

    @param headers: the end-to-end header pairs to forward, in order.
    @param peer_ip: the address of the peer that connected to lbproxy.
    @param proto: C{b"http"} or C{b"https"}.
    @param host: the client's C{Host} header, or L{None}.
    @param trusted: whether the peer is one of C{trusted_proxies}.
    """
    kept = []
    forwarded_for = []
    seen_proto = seen_host = False
    for name, value in headers:
        lower = name.lower()
        if lower == b"x-forwarded-for":
            if trusted:
                forwarded_for.append(value)
        elif lower == b"x-forwarded-proto":
            if trusted and not seen_proto:
                seen_proto = True
                kept.append((name, value))
        elif lower == b"x-forwarded-host":
            if trusted and not seen_host:
                seen_host = True
                kept.append((name, value))
        elif lower == b"forwarded":
            if trusted:
                kept.append((name, value))
        else:
            kept.append((name, value))
    forwarded_for.append(peer_ip)
    kept.append((b"X-Forwarded-For", b", ".join(forwarded_for)))
    if not seen_proto:
        kept.append((b"X-Forwarded-Proto", proto))
    if host is not None and not seen_host:
        kept.append((b"X-Forwarded-Host", host))
    return kept
