# -*- test-case-name: tests.test_passthrough -*-
"""
C{tls.passthrough}: server names whose TLS connections are relayed,
undecrypted, to a pool instead of being terminated by lbproxy.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader
from lbproxy.config.syntax import hostname_problem
from lbproxy.config.tcp import check_relay_pool

__all__ = ["parse_passthrough", "check_passthrough"]


def parse_passthrough(value: Any, key: str, reader: Reader) -> Tuple[Tuple[str, str], ...]:
    """
    C{passthrough = { "db.example.com" = "pg-tls", "*.internal.example" =
    "internal" }}: C{(name, pool)} pairs, names lower-cased.  A C{*.} name
    covers one more label (as in a certificate).
    """
    table = reader.table(value, key)
    pairs = []
    seen: Dict[str, str] = {}
    for raw, pool in table.items():
        name_key = child_key(key, raw)
        name = raw.strip().lower().rstrip(".")
        host = name[2:] if name.startswith("*.") else name
        problem = hostname_problem(host) if "*" not in host else f"invalid name {quote(raw)}"
        if problem is not None:
            raise reader.fail(name_key, problem + ' (a server name, or "*." and a domain)')
        if name in seen:
            raise reader.fail(name_key, f"{quote(raw)} is listed twice")
        seen[name] = raw
        pairs.append((name, reader.nonempty_string(pool, name_key)))
    return tuple(pairs)


def check_passthrough(reader: Reader, passthrough, pools: Mapping[str, Any]) -> None:
    """
    Every passthrough pool exists and has plain C{host:port} targets
    (lbproxy relays the client's TLS as it is).
    """
    for name, pool in passthrough:
        check_relay_pool(
            pools, pool, child_key("tls.passthrough", name), reader,
            "passthrough relays the client's own TLS",
        )
