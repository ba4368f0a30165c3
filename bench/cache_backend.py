# -*- test-case-name: tests.e2e.test_cache_e2e -*-
"""
A backend for the cache's end-to-end tests and benchmark: it counts the
requests it gets, answers after a delay when asked, and streams events.

  - C{GET /c/NAME?size=N&delay=S&cc=VALUE}: N bytes of HTML (a fixed
    pattern), after S seconds, with C{Cache-Control: VALUE} (default
    C{max-age=60}) and a strong C{ETag};
  - C{GET /json?size=N}: N bytes of JSON;
  - C{GET /events?count=N&every=S}: C{text/event-stream}, one event every
    S seconds, then the end;
  - C{GET /count}: the requests counted so far, by path, as JSON;
  - anything else: 404.

Run: C{python -m bench.cache_backend --port N}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from functools import lru_cache
from typing import Optional, Sequence

from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Site

__all__ = ["html_body", "json_body", "main"]

_VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her all she there would their we him been has when "
    "who will more no if out so said what up its about into than them can only other new "
    "some could time these two may then do first any my now such like our over man me even "
    "most made after also did many before must through back years where much your way well "
    "proxy cache response request backend server client header body stream compression "
    "latency throughput connection timeout route pool target health balance reload"
).split()


@lru_cache(maxsize=16)
def html_body(size: int) -> bytes:
    """
    C{size} bytes of HTML-like text, the same every time: paragraphs,
    links and list items of words drawn from a vocabulary (seeded), so that
    it compresses about as real pages do, not as a repeated block would.
    """
    rng = random.Random(size)
    words = _VOCABULARY
    parts = ["<!DOCTYPE html>\n<html><head><title>lbproxy</title></head><body>\n"]
    total = len(parts[0])
    while total < size:
        kind = rng.random()
        text = " ".join(rng.choice(words) for _ in range(rng.randint(8, 60)))
        if kind < 0.6:
            piece = f'<p class="c{rng.randint(1, 40)}">{text.capitalize()}.</p>\n'
        elif kind < 0.8:
            piece = f'<li><a href="/{rng.choice(words)}/{rng.randint(1, 99999)}">{text[:40]}</a></li>\n'
        else:
            level = rng.randint(2, 4)
            piece = f"<h{level}>{text[:50].title()}</h{level}>\n"
        parts.append(piece)
        total += len(piece)
    return "".join(parts).encode("ascii")[:size]


@lru_cache(maxsize=16)
def json_body(size: int) -> bytes:
    """
    C{size} bytes of JSON-like records (seeded values; not closed when cut
    short).
    """
    rng = random.Random(-size)
    words = _VOCABULARY
    parts = ["["]
    total = 1
    i = 0
    while total < size:
        record = json.dumps({
            "id": i, "name": " ".join(rng.choice(words) for _ in range(3)),
            "price": round(rng.uniform(0, 1000), 2), "stock": rng.randint(0, 5000),
            "tags": [rng.choice(words) for _ in range(rng.randint(0, 4))],
            "active": rng.random() < 0.8, "sku": "%08x" % rng.getrandbits(32),
        }, separators=(",", ":")) + ","
        parts.append(record)
        total += len(record)
        i += 1
    return "".join(parts).encode("ascii")[:size]


def _arg(request, name: bytes, default: str) -> str:
    values = request.args.get(name)
    return values[0].decode("ascii") if values else default


class Root(Resource):
    isLeaf = True

    def __init__(self, clock) -> None:
        super().__init__()
        self.clock = clock
        self.counts: Counter = Counter()

    def render_GET(self, request):
        path = request.path.decode("ascii")
        if path == "/count":
            request.setHeader(b"Content-Type", b"application/json")
            request.setHeader(b"Cache-Control", b"no-store")
            return json.dumps(dict(self.counts)).encode("ascii")
        self.counts[path] += 1
        if path.startswith("/c/"):
            body = html_body(int(_arg(request, b"size", "1024")))
            request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
            request.setHeader(b"Cache-Control", _arg(request, b"cc", "max-age=60").encode())
            request.setHeader(b"ETag", b'"v-%d"' % (len(body),))
            return self._later(request, body, float(_arg(request, b"delay", "0")))
        if path == "/json":
            request.setHeader(b"Content-Type", b"application/json")
            return json_body(int(_arg(request, b"size", "1024")))
        if path == "/events":
            return self._events(request, int(_arg(request, b"count", "5")),
                                float(_arg(request, b"every", "0.5")))
        request.setResponseCode(404)
        return b"not found\n"

    def _later(self, request, body: bytes, delay: float):
        if delay <= 0:
            return body
        call = self.clock.callLater(delay, self._finish, request, body)
        request.notifyFinish().addErrback(lambda _: call.active() and call.cancel())
        return NOT_DONE_YET

    @staticmethod
    def _finish(request, body: bytes) -> None:
        request.setHeader(b"Content-Length", b"%d" % (len(body),))
        request.write(body)
        request.finish()

    def _events(self, request, count: int, every: float):
        request.setHeader(b"Content-Type", b"text/event-stream")
        request.setHeader(b"Cache-Control", b"no-cache")
        state = {"n": 0, "call": None}

        def send() -> None:
            request.write(b"data: event %d\n\n" % (state["n"],))
            state["n"] += 1
            if state["n"] >= count:
                request.finish()
            else:
                state["call"] = self.clock.callLater(every, send)

        def gone(_) -> None:
            if state["call"] is not None and state["call"].active():
                state["call"].cancel()

        request.notifyFinish().addErrback(gone)
        send()
        return NOT_DONE_YET


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache_backend")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    from twisted.internet import reactor

    site = Site(Root(reactor))
    site.displayTracebacks = False
    reactor.listenTCP(args.port, site, backlog=2048, interface="127.0.0.1")
    print(f"cache backend listening on 127.0.0.1:{args.port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
