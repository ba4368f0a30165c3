# -*- test-case-name: tests.test_edgeconfig -*-
"""
Which proxies in front of lbproxy are believed about the client's address:
C{server.trusted_proxies} and C{server.forwarded_header}.
"""

from __future__ import annotations

from typing import Any, Tuple

from lbproxy.config.errors import quote
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import networks

__all__ = ["FORWARDED_HEADERS", "parse_forwarded_header", "parse_trusted_proxies"]

#: The values accepted for the header trusted proxies write.
FORWARDED_HEADERS: Tuple[str, ...] = ("x-forwarded-for", "forwarded")


def parse_trusted_proxies(value: Any, key: str, reader: Reader) -> Tuple[str, ...]:
    """
    C{trusted_proxies}: an array of addresses or CIDRs of proxies whose
    forwarding header is believed; empty for none.
    """
    items = reader.array(value, key, 'e.g. ["10.0.0.0/8"]')
    if not items:
        return ()
    return networks(items, key, reader)


def parse_forwarded_header(value: Any, key: str, reader: Reader) -> str:
    """
    Which header trusted proxies write: C{"x-forwarded-for"} (the default
    to use when absent) or C{"forwarded"} (RFC 7239), in any case.
    """
    text = reader.string(value, key).strip().lower()
    if text not in FORWARDED_HEADERS:
        raise reader.fail(
            key,
            f"expected one of {', '.join(quote(h) for h in FORWARDED_HEADERS)}, "
            f"got {quote(value)}",
        )
    return text
