# -*- test-case-name: tests.test_demo -*-
"""
A small demo backend: the application servers the shipped C{config.toml}
starts behind the proxy, and a tool for poking at the proxy by hand.

Every response carries C{X-Demo-Backend: NAME}.  The endpoints:

  - C{/healthz}: C{ok};
  - C{/echo[/...]} (any method): a JSON description of the request as it
    arrived (method, URI, headers, body length and SHA-256);
  - C{/bytes/N[?chunked=1]}: N bytes of a fixed pattern, streamed with a
    producer that follows the connection's backpressure;
  - C{/status/CODE}: that status code;
  - C{/slow/SECONDS}: answers after that delay;
  - C{/cookies}: three C{Set-Cookie} headers;
  - C{/die}: announces 1000000 bytes, sends about 1000, then drops the
    connection;
  - anything else: GET/HEAD answer the configured text.

Run standalone::

    python -m lbproxy.demo --listen tcp:8081:interface=127.0.0.1 --name mango1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from typing import List, Optional, Sequence

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

#: The repeating pattern C{/bytes/N} sends: byte I of the body is C{I % 256}.
PATTERN = bytes(range(256))

#: How much C{/bytes/N} writes at a time (a multiple of C{len(PATTERN)}, so
#: every chunk starts at pattern offset 0).
CHUNK_SIZE = 64 * 1024
_CHUNK = PATTERN * (CHUNK_SIZE // len(PATTERN))

#: Largest C{/slow} delay accepted, in seconds.
MAX_SLOW_SECONDS = 3600.0

#: What C{/die} announces and what it really sends before dying.
DIE_ANNOUNCED_LENGTH = 1000000
DIE_SENT_LENGTH = 1000


def patternBytes(offset: int, length: int) -> bytes:
    """
    The slice of the C{/bytes/N} body starting at C{offset}; used by tests to
    check what arrived.

    @param offset: Position of the first byte in the body.
    @param length: How many bytes to return.
    """
    start = offset % len(PATTERN)
    reps = (start + length) // len(PATTERN) + 1
    return (PATTERN * reps)[start : start + length]


def _plain(request: Request, body: bytes) -> bytes:
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return body


def _badRequest(request: Request, reason: str) -> bytes:
    request.setResponseCode(400)
    return _plain(request, reason.encode("utf-8") + b"\n")


class _Text(Resource):
    """
    The application page: GET and HEAD on any path answer the text.
    """

    isLeaf = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self._body = text.encode("utf-8") + b"\n"

    def render_GET(self, request: Request) -> bytes:
        return _plain(request, self._body)


class _Health(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return _plain(request, b"ok")


class _Echo(Resource):
    """
    Describe the request as JSON.  Headers are listed in the order Twisted
    keeps them: by first appearance of each name, repeated values together.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        headers: List[List[str]] = []
        for name, values in request.requestHeaders.getAllRawHeaders():
            for value in values:
                headers.append([name.decode("latin-1"), value.decode("latin-1")])
        length, digest = _hashContent(request)
        body = json.dumps(
            {
                "method": request.method.decode("latin-1"),
                "uri": request.uri.decode("latin-1"),
                "headers": headers,
                "body_length": length,
                "body_sha256": digest,
            }
        )
        request.setHeader(b"content-type", b"application/json")
        return body.encode("utf-8") + b"\n"


def _hashContent(request: Request) -> tuple:
    """
    Length and SHA-256 hex digest of the request body, read in chunks (large
    bodies sit in a temporary file, not in memory).
    """
    content = request.content
    digest = hashlib.sha256()
    length = 0
    if content is None:
        return length, digest.hexdigest()
    content.seek(0)
    while True:
        chunk = content.read(CHUNK_SIZE)
        if not chunk:
            break
        length += len(chunk)
        digest.update(chunk)
    return length, digest.hexdigest()


@implementer(IPushProducer)
class _PatternProducer:
    """
    Write C{length} pattern bytes to a request, a chunk at a time, for as
    long as the connection is not paused.

    @ivar _remaining: Bytes still to write.
    """

    def __init__(self, request: Request, length: int) -> None:
        self._request = request
        self._remaining = length
        self._paused = False
        self._stopped = False

    def start(self) -> None:
        self._request.notifyFinish().addErrback(lambda reason: self.stopProducing())
        self._request.registerProducer(self, True)
        self._produce()

    def _produce(self) -> None:
        # Bounded: every pass writes at least one byte or ends the loop.
        while self._remaining > 0 and not (self._paused or self._stopped):
            data = _CHUNK[: min(CHUNK_SIZE, self._remaining)]
            self._remaining -= len(data)
            self._request.write(data)
        if self._remaining == 0 and not self._stopped:
            self._stopped = True
            self._request.unregisterProducer()
            self._request.finish()

    def pauseProducing(self) -> None:
        self._paused = True

    def resumeProducing(self) -> None:
        if self._paused:
            self._paused = False
            self._produce()

    def stopProducing(self) -> None:
        self._stopped = True


class _Bytes(Resource):
    """
    C{/bytes/N}: N pattern bytes, with C{Content-Length} unless the query
    has C{chunked=1}.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> object:
        if len(request.postpath) != 1 or not request.postpath[0].isdigit():
            return _badRequest(request, "usage: /bytes/N")
        length = int(request.postpath[0])
        request.setHeader(b"content-type", b"application/octet-stream")
        if request.args.get(b"chunked") != [b"1"]:
            request.setHeader(b"content-length", b"%d" % (length,))
        if request.method == b"HEAD":
            return b""
        _PatternProducer(request, length).start()
        return NOT_DONE_YET


class _Status(Resource):
    """
    C{/status/CODE}, any method: that status with a one-line body.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        if len(request.postpath) != 1 or not request.postpath[0].isdigit():
            return _badRequest(request, "usage: /status/CODE")
        code = int(request.postpath[0])
        if not 200 <= code <= 599:
            return _badRequest(request, "CODE must be 200-599")
        request.setResponseCode(code)
        return _plain(request, b"status %d\n" % (code,))


class _Slow(Resource):
    """
    C{/slow/SECONDS}: answer after the delay, or never if the client leaves.
    """

    isLeaf = True

    def __init__(self, clock: IReactorTime) -> None:
        super().__init__()
        self._clock = clock

    def render_GET(self, request: Request) -> object:
        try:
            seconds = float(request.postpath[0]) if len(request.postpath) == 1 else -1
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= MAX_SLOW_SECONDS:
            return _badRequest(request, "usage: /slow/SECONDS (0-3600)")
        body = b"slept %g\n" % (seconds,)
        call = self._clock.callLater(seconds, self._answer, request, body)
        request.notifyFinish().addErrback(self._cancel, call)
        return NOT_DONE_YET

    def _answer(self, request: Request, body: bytes) -> None:
        request.write(_plain(request, body))
        request.finish()

    def _cancel(self, reason: Failure, call: IDelayedCall) -> None:
        if call.active():
            call.cancel()


class _Cookies(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        request.addCookie(b"flavour", b"mango", path=b"/")
        request.addCookie(b"colour", b"green", path=b"/")
        request.addCookie(b"session", b"abc123", path=b"/", httpOnly=True)
        return _plain(request, b"three cookies\n")


class _Die(Resource):
    """
    A backend dying mid-response: headers promise C{DIE_ANNOUNCED_LENGTH}
    bytes, C{DIE_SENT_LENGTH} are sent, then the connection is closed.

    The close flushes what was written first, as the kernel does for a
    process that crashes; C{abortConnection} would discard the buffered
    headers and bytes, so the client would see nothing at all.
    """

    isLeaf = True

    def render_GET(self, request: Request) -> object:
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", b"%d" % (DIE_ANNOUNCED_LENGTH,))
        request.write(patternBytes(0, DIE_SENT_LENGTH))
        request.channel.transport.loseConnection()
        return NOT_DONE_YET


class DemoRoot(Resource):
    """
    The root of the demo resource tree: names every response with
    C{X-Demo-Backend} and answers unknown paths with the application text.
    """

    def __init__(self, name: str, text: str, clock: IReactorTime) -> None:
        super().__init__()
        self._name = name.encode("utf-8")
        self._text = _Text(text)
        self.putChild(b"healthz", _Health())
        self.putChild(b"echo", _Echo())
        self.putChild(b"bytes", _Bytes())
        self.putChild(b"status", _Status())
        self.putChild(b"slow", _Slow(clock))
        self.putChild(b"cookies", _Cookies())
        self.putChild(b"die", _Die())

    def getChildWithDefault(self, path: bytes, request: Request) -> IResource:
        request.setHeader(b"x-demo-backend", self._name)
        return super().getChildWithDefault(path, request)

    def getChild(self, path: bytes, request: Request) -> IResource:
        return self._text


class DemoSite(Site):
    """
    A L{Site} that writes no access log by default (the proxy in front logs
    requests); with C{logTo}, one line C{request METHOD URI} per request it
    parsed, so tests can compare what a backend saw with what the proxy
    forwarded.
    """

    noisy = False
    logTo = None

    def log(self, request: Request) -> None:
        if self.logTo is not None:
            self.logTo.write(
                "request %s %s\n"
                % (request.method.decode("latin-1"), request.uri.decode("latin-1"))
            )
            self.logTo.flush()


def demoSite(name: str, text: str, clock: IReactorTime, logTo=None) -> Site:
    """
    The demo backend as a L{Site}, ready to listen on an endpoint.

    @param name: Sent in every response's C{X-Demo-Backend} header.
    @param text: What GET on an ordinary path answers (a newline is added).
    @param clock: Schedules C{/slow} answers.
    @param logTo: A text stream for one line per request, or L{None}.
    """
    site = DemoSite(DemoRoot(name, text, clock))
    site.logTo = logTo
    return site


def main(argv: Optional[Sequence[str]] = None) -> int:
    """
    Run one demo backend until interrupted.

    @return: The process exit status.
    """
    parser = argparse.ArgumentParser(
        prog="python -m lbproxy.demo", description="Run an lbproxy demo backend."
    )
    parser.add_argument(
        "--listen", required=True, help="endpoint, e.g. tcp:8081:interface=127.0.0.1"
    )
    parser.add_argument("--name", required=True, help="backend name")
    parser.add_argument(
        "--text", help='page text (default: "This is the NAME application.")'
    )
    parser.add_argument(
        "--log-requests", action="store_true", help="print one line per request received"
    )
    args = parser.parse_args(argv)
    text = args.text if args.text is not None else f"This is the {args.name} application."

    from twisted.internet import endpoints, reactor

    status = []

    def listening(port: object) -> None:
        print(f"demo {args.name} listening on {args.listen}", flush=True)

    def failed(reason: Failure) -> None:
        print(f"demo {args.name}: cannot listen on {args.listen}: "
              f"{reason.getErrorMessage()}", file=sys.stderr, flush=True)
        status.append(1)
        # The failure may come before reactor.run(): stop once it runs.
        reactor.callWhenRunning(reactor.stop)

    try:
        endpoint = endpoints.serverFromString(reactor, args.listen)
    except (ValueError, TypeError, KeyError) as e:
        parser.error(f"bad --listen {args.listen!r}: {e}")
    logTo = sys.stdout if args.log_requests else None
    endpoint.listen(demoSite(args.name, text, reactor, logTo)).addCallbacks(listening, failed)
    reactor.run()
    return status[0] if status else 0


if __name__ == "__main__":
    sys.exit(main())
