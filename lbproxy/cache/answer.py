# -*- test-case-name: tests.test_cache_stage -*-
"""
Answering a request from a stored response: the head with C{Age} and
C{X-Cache}, the body (none for HEAD), or a 304 when the client's own
conditional matches (RFC 9110 section 13.1.2, 13.1.3), and a 304's update
of a stored head (RFC 9111 section 3.2, 4.3.4).
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

from lbproxy.cache.directives import header_values, parse_http_date
from lbproxy.cache.store import Entry

__all__ = ["answer", "not_modified", "updated_head"]

#: What a 304 carries of the stored head (RFC 9110 section 15.4.5).
_NOT_MODIFIED_HEADERS = frozenset(
    [b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary",
     b"last-modified"]
)
#: Never taken from a 304 into the stored head: framing, and what
#: describes the stored body's coding (a compressed variant's).
_KEPT = frozenset([b"content-length", b"transfer-encoding", b"content-encoding",
                   b"content-type", b"content-range"])
#: A hop-by-hop or per-response header never stored.
_NOT_STORED = frozenset([b"x-cache", b"set-cookie", b"content-length",
                         b"transfer-encoding"])


def _opaque(tag: bytes) -> bytes:
    tag = tag.strip()
    return tag[2:] if tag.startswith(b"W/") else tag


def not_modified(entry: Entry, ifNoneMatch: Optional[List[bytes]],
                 ifModifiedSince: Optional[List[bytes]]) -> bool:
    """
    Whether a client's conditional GET/HEAD is answered with 304 by the
    stored response: C{If-None-Match} by weak comparison (C{*} matches
    any), else C{If-Modified-Since} against C{Last-Modified}.
    """
    if ifNoneMatch:
        if entry.etag is None:
            return False
        mine = _opaque(entry.etag)
        for value in ifNoneMatch:
            for tag in value.split(b","):
                tag = tag.strip()
                if tag == b"*" or (tag and _opaque(tag) == mine):
                    return True
        return False
    if ifModifiedSince and entry.lastModified is not None:
        since = parse_http_date(ifModifiedSince[0])
        modified = parse_http_date(entry.lastModified)
        return since is not None and modified is not None and modified <= since
    return False


def stored_headers(headers: Sequence[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
    """
    The header pairs of a response as they are stored (without C{X-Cache},
    C{Set-Cookie} and framing; its C{Age} is kept for the age arithmetic
    and replaced when answering).
    """
    return [(n, v) for n, v in headers if n.lower() not in _NOT_STORED]


def updated_head(stored: Sequence[Tuple[bytes, bytes]],
                 fresh: Sequence[Tuple[bytes, bytes]]) -> List[Tuple[bytes, bytes]]:
    """
    A stored head updated by a 304's: each header the 304 has replaces the
    stored ones of that name (RFC 9111 section 3.2), framing and the
    stored body's coding kept; a strong C{ETag} the stored head has in weak
    form (a compressed variant) stays weak.
    """
    fresh = stored_headers(fresh)
    storedTags = header_values(stored, b"etag")
    replace = {}
    for name, value in fresh:
        low = name.lower()
        if low in _KEPT:
            continue
        if low == b"etag" and storedTags and storedTags[0].startswith(b"W/") \
                and _opaque(storedTags[0]) == _opaque(value):
            value = storedTags[0]
        replace.setdefault(low, []).append((name, value))
    head = [(n, v) for n, v in stored if n.lower() not in replace]
    for pairs in replace.values():
        head.extend(pairs)
    return head


def answer(request, entry: Entry, age: float, label: bytes, hooks, context) -> int:
    """
    Answer C{request} from C{entry}.

    @param age: the entry's current age (sent as C{Age}, whole seconds).
    @param label: the C{X-Cache} value.
    @param hooks: the response-head hooks of the stages before the cache
        (the stages after it already ran when the response was stored).
    @return: the body bytes sent.
    """
    headers = request.requestHeaders
    if not_modified(entry, headers.getRawHeaders(b"if-none-match"),
                    headers.getRawHeaders(b"if-modified-since")) and entry.status == 200:
        code, reason = 304, b"Not Modified"
        pairs = [(n, v) for n, v in entry.headers if n.lower() in _NOT_MODIFIED_HEADERS]
        body = b""
    else:
        code, reason = entry.status, entry.reason
        # The stored Age is the backend's; the answer's is computed.
        pairs = [(n, v) for n, v in entry.headers if n.lower() != b"age"]
        body = entry.body
    pairs.append((b"Age", b"%d" % (min(int(age), 2147483648),)))
    pairs.append((b"X-Cache", label))
    for hook in hooks:
        pairs = hook(context, pairs)
    request.setResponseCode(code, reason or None)
    out = request.responseHeaders
    out.removeHeader(b"Server")
    for name, value in pairs:
        out.addRawHeader(name, value)
    if code != 304 and code != 204:
        out.setRawHeaders(b"Content-Length", [b"%d" % (len(body),)])
    if not request.bodyComplete:
        request.closeAfterResponse()
    if request.method == b"HEAD" or code in (204, 304):
        body = b""
    if body:
        request.write(body)
    request.finish()
    return len(body)
