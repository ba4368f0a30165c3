"""
Helpers for the cache and compression tests: configurations, requests
into a L{ProxyHarness}, and responses parsed back.
"""

from __future__ import annotations

from typing import Dict, List, Tuple


def config(cache=True, compress=None, cacheTable=None, **route):
    routeTable = dict(pool="web", **route)
    if cache is not None:
        routeTable["cache"] = cache
    if compress is not None:
        routeTable["compress"] = compress
    document = {
        "server": {"request_id_header": False},
        "pools": {"web": {"targets": ["10.1.0.1:80"]}},
        "routes": [routeTable],
    }
    if cacheTable is not None:
        document["cache"] = cacheTable
    return document


def request(proxy, path=b"/a", headers=b"", method=b"GET", port=[1000]):
    """
    Send one request on a new client connection; return the client.
    """
    port[0] += 1
    client = proxy.client(port=port[0])
    client.send(method + b" " + path + b" HTTP/1.1\r\nHost: h\r\n" + headers + b"\r\n")
    return client


def response(head: bytes, body: bytes = b"") -> bytes:
    """
    A backend response with a Content-Length, closing its connection (so
    that every backend request opens one: L{ProxyHarness.pending} counts
    them).
    """
    return (b"HTTP/1.1 " + head + b"\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % (len(body),) + body)


def parse(data: bytes) -> Tuple[int, Dict[bytes, List[bytes]], bytes]:
    """
    A client's received bytes as (status, headers by lower-case name,
    body decoded from its framing).
    """
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ")[1])
    headers: Dict[bytes, List[bytes]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if headers.get(b"transfer-encoding") == [b"chunked"]:
        body = b""
        while rest:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            body += rest[:n]
            rest = rest[n + 2:]
        return status, headers, body
    return status, headers, rest


def xcache(data: bytes) -> bytes:
    return parse(data)[1][b"x-cache"][0]
