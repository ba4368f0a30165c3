# -*- test-case-name: tests.test_routing -*-
"""
Choosing a route for a request from its Host and path.

Pure: no Twisted, no I/O.  L{RouteTable} does its work at construction so
that L{RouteTable.match}, called for every request, is a dict lookup and a
short scan of precomputed candidates.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Protocol, Sequence, Set, Tuple

__all__ = ["RouteTable", "normalize_host", "normalize_path", "strip_prefix"]


class _RouteLike(Protocol):
    """
    What L{RouteTable} needs of a route (L{lbproxy.config.Route}).
    """

    @property
    def host(self) -> Optional[str]: ...

    @property
    def path(self) -> str: ...


def normalize_path(path: str) -> str:
    """
    Normalize the path of a request target for routing.

    Repeated slashes are merged and dot-segments removed as in RFC 3986
    section 5.2.4.  A trailing slash is kept, and a path ending in a
    dot-segment (C{"/a/."}, C{"/a/b/.."}) ends in a slash.  Percent-encoded
    octets are left as they are.

    @param path: the path of a request target, without query string (any
        str: the proxy decodes the raw bytes as latin-1).
    @return: a path starting with C{"/"}; C{"/"} for an empty path.
    """
    if path[:1] == "/" and "//" not in path and "/." not in path:
        return path
    segments = path.split("/")
    kept: List[str] = []
    for segment in segments:
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if kept:
                kept.pop()
            continue
        kept.append(segment)
    if not kept:
        return "/"
    result = "/" + "/".join(kept)
    if segments[-1] in ("", ".", ".."):
        result += "/"
    return result


_UNRESERVED = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
)
_HEXDIGITS = frozenset("0123456789abcdefABCDEF")


class BadPath(ValueError):
    """
    A request path lbproxy refuses (400): a malformed percent-encoding, or
    an encoded slash or backslash when those are rejected.
    """


def decode_unreserved(path: str, reject_encoded_slashes: bool = True) -> str:
    """
    Decode the percent-encoded octets that stand for unreserved characters
    (C{%41} is C{A}, C{%2E} is C{.}), as RFC 3986 section 6.2.2.2 allows, and
    upper-case the hex digits of the others, so that one resource has one
    spelling before dot-segments are removed and routes are matched.

    @param reject_encoded_slashes: refuse C{%2F} and C{%5C} (an encoded
        C{/} or C{\\} means something else to a backend that decodes it
        than to lbproxy, which routes on the undecoded path).
    @raise BadPath: for C{%} not followed by two hex digits, or an encoded
        slash or backslash when they are refused.
    """
    if "%" not in path:
        return path
    parts = path.split("%")
    out = [parts[0]]
    for part in parts[1:]:
        code = part[:2]
        if len(code) < 2 or not _HEXDIGITS.issuperset(code):
            raise BadPath("malformed percent-encoding")
        char = chr(int(code, 16))
        if char in _UNRESERVED:
            out.append(char + part[2:])
            continue
        if reject_encoded_slashes and char in "/\\":
            raise BadPath("encoded slash or backslash in the path")
        out.append("%" + code.upper() + part[2:])
    return "".join(out)


def normalize_request_path(path: str, reject_encoded_slashes: bool = True) -> str:
    """
    The one normalization of a request path, applied before routing and
    access rules, and the path the backend receives: unreserved characters
    decoded (L{decode_unreserved}), then L{normalize_path}.

    @raise BadPath: see L{decode_unreserved}.
    """
    return normalize_path(decode_unreserved(path, reject_encoded_slashes))


def normalize_host(host: Optional[str]) -> Optional[str]:
    """
    Reduce a Host header value to the name routes are matched against.

    @param host: the Host header value (or the authority of an
        absolute-form request target), or L{None} if there was none.
    @return: the name in lower case, without port, brackets or trailing
        dot (C{"WWW.Mango.COM:8080"} -> C{"www.mango.com"}, C{"[::1]:80"}
        -> C{"::1"}); L{None} for a missing or empty value.
    """
    if not host:
        return None
    host = host.lower()
    if host[0] in " \t" or host[-1] in " \t":
        host = host.strip(" \t")
    if host[:1] == "[":
        end = host.find("]")
        host = host[1:end] if end != -1 else host[1:]
    else:
        colon = host.find(":")
        if colon != -1 and host.find(":", colon + 1) == -1:
            host = host[:colon]
        # else: no port, or an unbracketed IPv6 literal left as it is.
    if host[-1:] == ".":
        host = host.rstrip(".")
    return host or None


def strip_prefix(path: str, prefix: str) -> str:
    """
    Remove a route's path prefix from a path it matched.

    @param path: a normalized path.
    @param prefix: a route path: starts with C{"/"}, no trailing slash
        unless it is C{"/"}.
    @return: the rest of C{path}, starting with C{"/"} (C{"/apple/x"} less
        C{"/apple"} is C{"/x"}; C{"/apple"} and C{"/apple/"} give C{"/"}).
        C{path} unchanged if C{prefix} is C{"/"} or does not match it on a
        segment boundary.
    """
    if prefix == "/" or not path.startswith(prefix):
        return path
    rest = path[len(prefix) :]
    if not rest:
        return "/"
    if rest[0] != "/":
        return path
    return rest


# One candidate: (prefix, prefix with trailing slash, route).  A path
# matches when it equals the prefix or starts with the slashed form; for
# the prefix "/" the slashed form is "/" itself, which every path starts
# with.
_Entry = Tuple[str, str, _RouteLike]

_EXACT, _WILDCARD, _ANY = 0, 1, 2


class RouteTable:
    """
    Routes, compiled for matching.

    Precedence among the routes that apply to a request: a route for the
    exact host beats a wildcard route, which beats a route for any host; a
    longer wildcard suffix beats a shorter one; within those, the longest
    path prefix wins, then the route that comes first.

    Each exact host and each wildcard suffix gets the full list of
    candidates that can apply to a name it matches, already in that order
    (its own routes, then those of shorter wildcards that also match, then
    the host-less ones), so L{match} picks one list and returns the first
    route in it whose prefix matches.

    @ivar routes: the routes, in configuration order.
    """

    def __init__(self, routes: Sequence[_RouteLike]) -> None:
        """
        @param routes: L{lbproxy.config.Route}-like objects, in
            configuration order (which breaks ties).
        @raise ValueError: for a host pattern with C{"*"} anywhere but as
            a leading C{"*."} label.
        """
        self.routes = tuple(routes)
        # (sort key, entry) per host key; host key is the exact name, the
        # wildcard suffix (".mango.com") or None.
        exact: Dict[str, List[Tuple[tuple, _Entry]]] = {}
        wildcard: Dict[str, List[Tuple[tuple, _Entry]]] = {}
        anyhost: List[Tuple[tuple, _Entry]] = []
        seen: Set[Tuple[Optional[str], str]] = set()
        for index, route in enumerate(self.routes):
            prefix = route.path or "/"
            if len(prefix) > 1 and prefix.endswith("/"):
                prefix = prefix.rstrip("/") or "/"
            host = route.host.lower() if route.host else None
            if (host, prefix) in seen:
                continue  # an earlier route always wins
            seen.add((host, prefix))
            slashed = prefix if prefix == "/" else prefix + "/"
            entry: _Entry = (prefix, slashed, route)
            if host is None:
                anyhost.append(((_ANY, 0, -len(prefix), index), entry))
            elif host.startswith("*."):
                if "*" in host[1:]:
                    raise ValueError(f"bad wildcard host pattern: {route.host!r}")
                suffix = host[1:]
                key = (_WILDCARD, -len(suffix), -len(prefix), index)
                wildcard.setdefault(suffix, []).append((key, entry))
            elif "*" in host:
                raise ValueError(f"bad wildcard host pattern: {route.host!r}")
            else:
                exact.setdefault(host, []).append(((_EXACT, 0, -len(prefix), index), entry))

        def ordered(keyed: List[Tuple[tuple, _Entry]]) -> Tuple[_Entry, ...]:
            keyed.sort(key=lambda item: item[0])
            entries: List[_Entry] = []
            for _, entry in keyed:
                entries.append(entry)
                if entry[0] == "/":
                    break  # matches every path: nothing after it can win
            return tuple(entries)

        self._any: Tuple[_Entry, ...] = ordered(list(anyhost))
        self._wildcards: Dict[str, Tuple[_Entry, ...]] = {}
        for suffix, own in wildcard.items():
            keyed = list(own) + anyhost
            for shorter in _suffixes(suffix[1:]):
                keyed.extend(wildcard.get(shorter, ()))
            self._wildcards[suffix] = ordered(keyed)
        self._exact: Dict[str, Tuple[_Entry, ...]] = {}
        for name, own in exact.items():
            keyed = list(own) + anyhost
            for suffix in _suffixes(name):
                keyed.extend(wildcard.get(suffix, ()))
            self._exact[name] = ordered(keyed)

    def match(self, host: Optional[str], path: str) -> Optional[_RouteLike]:
        """
        Find the route for a request.

        @param host: the request's host, as returned by L{normalize_host};
            L{None} when the request had none (only host-less routes apply).
        @param path: the request's path, as returned by L{normalize_path}.
        @return: the route, or L{None} if none applies.
        """
        candidates = self._any
        if host is not None:
            found = self._exact.get(host)
            if found is not None:
                candidates = found
            elif self._wildcards:
                # The wildcard suffixes of the name, longest first.
                wildcards = self._wildcards
                dot = host.find(".", 1)
                while dot != -1:
                    found = wildcards.get(host[dot:])
                    if found is not None:
                        candidates = found
                        break
                    dot = host.find(".", dot + 1)
        for prefix, slashed, route in candidates:
            if path.startswith(slashed) or path == prefix:
                return route
        return None


def _suffixes(name: str) -> Iterator[str]:
    """
    The wildcard suffixes that match a name, longest first.

    @param name: a host name, e.g. C{"a.b.mango.com"}.
    @return: an iterator of C{".b.mango.com"}, C{".mango.com"},
        C{".com"}: each leaves at least one non-empty label in front.
    """
    dot = name.find(".", 1)
    while dot != -1:
        yield name[dot:]
        dot = name.find(".", dot + 1)
