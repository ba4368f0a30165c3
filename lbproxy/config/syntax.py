# -*- test-case-name: tests.test_config -*-
"""
The syntax of values that several sections share: host names, path
prefixes, probe paths, networks and methods.

Pure string checks on top of L{lbproxy.config.reader}; the networks are
read with L{lbproxy.policy.access.compile_network}, exactly as the access
policy will compile them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Callable, Optional, Tuple

from lbproxy.config.errors import quote
from lbproxy.config.reader import Reader
from lbproxy.policy.access import compile_network
from lbproxy.wire.http1 import is_token

__all__ = [
    "hostname_problem",
    "method_check",
    "networks",
    "path_prefix_problem",
    "probe_path",
]

_HOST_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\Z")


def hostname_problem(host: str) -> Optional[str]:
    """
    Check a lower-cased DNS name or IPv4 literal.

    @return: What is wrong with C{host}, or L{None} if it is acceptable.
    """
    if not host:
        return "empty host"
    if len(host) > 253:
        return "host name is longer than 253 characters"
    labels = host.split(".")
    if labels[-1].isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"invalid IPv4 address {quote(host)}"
        return None
    for label in labels:
        if not label:
            return f"empty label in host name {quote(host)}"
        if not _HOST_LABEL.match(label):
            return (
                f"invalid host name {quote(host)} (letters, digits, "
                '"-" and "_" only, separated by dots)'
            )
    return None


def path_prefix_problem(path: str) -> Optional[str]:
    """
    Check what every configured path prefix (a route's path, a blocked
    path) must be: starting with C{"/"}, without whitespace, control
    characters, query or fragment.  Dot-segments are the caller's to
    check, after its own normalization.

    @return: What is wrong with C{path}, or L{None}.
    """
    if not path.startswith("/"):
        return f'must start with "/", got {quote(path)}'
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return f"path {quote(path)} must not contain whitespace or control characters"
    if "?" in path or "#" in path:
        return f"path {quote(path)} must not contain a query or fragment"
    return None


def probe_path(value: Any, key: str, reader: Reader) -> str:
    """
    A path lbproxy requests or answers as is (a health probe's, the health
    endpoint's): starting with C{"/"}, without whitespace or control
    characters.
    """
    path = reader.string(value, key)
    if not path.startswith("/"):
        raise reader.fail(key, f'must start with "/", got {quote(path)}')
    if any(c.isspace() or ord(c) < 32 for c in path):
        raise reader.fail(key, "must not contain whitespace")
    return path


def networks(value: Any, key: str, reader: Reader) -> Tuple[str, ...]:
    """
    A non-empty array of distinct IPv4 or IPv6 addresses or CIDRs,
    normalized (C{"10.1.2.3"} becomes C{"10.1.2.3/32"}).
    """

    def check(text: str, item_key: str) -> str:
        text = text.strip()
        try:
            return str(compile_network(text))
        except ValueError:
            pass
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            pass
        else:
            if "%" not in text:
                raise reader.fail(
                    item_key,
                    f"network {quote(text)} has host bits set "
                    f"(did you mean {quote(str(loose))}?)",
                )
        raise reader.fail(
            item_key,
            f"invalid network {quote(text)}: expected an IPv4 or IPv6 "
            'address or CIDR, e.g. "10.0.0.0/8", "10.1.2.3" or "2001:db8::/32"',
        )

    return reader.strings(value, key, 'e.g. ["10.0.0.0/8", "2001:db8::/32"]', check)


def method_check(reader: Reader, wildcard: bool = False) -> Callable[[str, str], str]:
    """
    A check for L{Reader.strings} of HTTP method names: tokens, in upper
    case (methods are case-sensitive).

    @param wildcard: Whether C{"*"} is accepted too.
    """

    def check(text: str, item_key: str) -> str:
        if wildcard and text == "*":
            return text
        if not is_token(text):
            raise reader.fail(
                item_key,
                f"invalid method {quote(text)} (a method is a token: letters, "
                "digits and !#$%&'*+-.^_`|~, no spaces)",
            )
        if text != text.upper():
            raise reader.fail(
                item_key,
                f"method {quote(text)} is not upper case (methods are "
                f"case-sensitive; did you mean {quote(text.upper())}?)",
            )
        return text

    return check
