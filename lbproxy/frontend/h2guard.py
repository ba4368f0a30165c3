# -*- test-case-name: tests.test_http2_guard -*-
"""
What lbproxy refuses on an HTTP/2 connection, apart from Twisted's and
the C{h2} package's own checks; L{lbproxy.frontend.http2.ProxyH2Connection}
applies these.

Helpers that decide, without doing any I/O: header lists in, decisions
out; bytes counted into frames; counts checked against bounds per interval.

The bounds (L{H2Limits}) are per connection:

  - client resets (C{RST_STREAM}): the "rapid reset" attack
    (CVE-2023-44487) opens streams and resets them at once, so that each
    costs the server a request (here: a backend connection) while the
    client's concurrent-stream limit never binds;
  - control frames (C{SETTINGS}, C{PING}, C{PRIORITY}, C{WINDOW_UPDATE},
    empty C{DATA} without C{END_STREAM}, C{CONTINUATION}, C{GOAWAY},
    unknown types), each of which costs work (and some, a reply) but
    carries no request.

Past a bound the connection gets C{GOAWAY(ENHANCE_YOUR_CALM)} and is
closed, as nginx and Envoy do.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "FrameBudget",
    "FrameCounter",
    "H2Limits",
    "connectTarget",
    "isExtendedConnect",
]


class H2Limits(NamedTuple):
    """
    Bounds per HTTP/2 connection.

    @ivar resets: The most C{RST_STREAM} frames from the client per
        C{interval}.
    @ivar controlFrames: The most control frames per C{interval} (see
        L{FrameCounter}).
    @ivar interval: The counting interval, in seconds.
    @ivar penalty: Seconds an offending client's address is refused new
        connections (L{lbproxy.frontend.penalty.RepeatOffenders}).
    """

    resets: int = 200
    controlFrames: int = 1000
    interval: float = 10.0
    penalty: float = 10.0


class FrameBudget:
    """
    Counts events against C{limit} per C{interval}.

    The interval starts at the first event and the clock is only read once
    the count passes the limit: if the interval is over by then, a new one
    starts there, otherwise the budget is spent.  So more than C{limit}
    events within one interval always trip it, and no client is cut off
    for fewer than C{limit} in any interval.

    @ivar count: The events counted in the current interval (less credit).
    """

    def __init__(self, clock, limit: int, interval: float) -> None:
        self._clock = clock
        self._limit = limit
        self._interval = interval
        self._start = clock.seconds()
        self.count = 0

    def spend(self, events: int = 1) -> bool:
        """
        Count C{events}.

        @return: Whether the budget is spent (the bound was passed).
        """
        self.count += events
        if self.count <= self._limit:
            return False
        now = self._clock.seconds()
        # (A clock that went backwards starts a new interval too.)
        if not 0 <= now - self._start < self._interval:
            self._start = now
            self.count = events
            return events > self._limit
        return True

    def credit(self, events: int) -> None:
        """
        Allow C{events} more in this interval (at most C{limit} banked).
        """
        self.count = max(self.count - events, -self._limit)


# Frame types (RFC 9113 section 6): what each counts as.
_DATA, _RESET, _CONTROL, _FREE = 0, 1, 2, 3
_KINDS = bytes(
    [_DATA, _FREE, _CONTROL, _RESET, _CONTROL, _FREE, _CONTROL, _CONTROL, _CONTROL, _CONTROL]
    + [_CONTROL] * 246
)
_PREFACE = 24  # b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_END_STREAM = 0x1


class FrameCounter:
    """
    Counts the frames a client sends, from their 9-byte headers (RFC 9113
    4.1) and before the C{h2} package parses them, so that every frame
    counts, even those C{h2} drops without an event (a reset of a closed
    stream), and a connection over its bound is closed before the frames
    are processed.  Payloads are skipped, not read.

    C{HEADERS} and C{PUSH_PROMISE} (which C{h2} refuses from a client) are
    not counted; C{DATA} only when empty and not ending its stream.
    """

    def __init__(self) -> None:
        self._skip = _PREFACE
        self._head = b""

    def feed(self, data: bytes) -> Tuple[int, int]:
        """
        Count the frames that start in C{data}.

        @return: C{(resets, control frames)}.
        """
        if self._head:
            data = self._head + data
            self._head = b""
        resets = control = 0
        pos = self._skip
        end = len(data) - 9
        kinds = _KINDS
        while pos <= end:
            length = (data[pos] << 16) | (data[pos + 1] << 8) | data[pos + 2]
            kind = kinds[data[pos + 3]]
            if kind == _CONTROL:
                control += 1
            elif kind == _RESET:
                resets += 1
            elif kind == _DATA and not length and not data[pos + 4] & _END_STREAM:
                control += 1
            pos += 9 + length
        if pos < len(data):
            self._head = data[pos:]
            self._skip = 0
        else:
            self._skip = pos - len(data)
        return resets, control

Fields = Sequence[Tuple[bytes, bytes]]


def isExtendedConnect(headers: Fields) -> bool:
    """
    Whether a request's header list is an extended C{CONNECT} (RFC 8441: a
    C{:protocol} pseudo-header, as WebSocket over HTTP/2 sends), which
    lbproxy does not support (it never advertises
    C{SETTINGS_ENABLE_CONNECT_PROTOCOL}).

    Only the pseudo-headers are looked at; they come first (RFC 9113
    8.3, which the C{h2} package enforces).
    """
    for name, _ in headers:
        if name == b":protocol":
            return True
        if not name.startswith(b":"):
            return False
    return False


def connectTarget(headers: Fields) -> Optional[bytes]:
    """
    The request target of a plain C{CONNECT}: its C{:authority}, as the
    authority-form of an HTTP/1.1 C{CONNECT} request line (RFC 9113
    8.5), or C{b""} if there is none.

    @return: L{None} if the request is not a C{CONNECT}.
    """
    method = None
    authority = b""
    for name, value in headers:
        if not name.startswith(b":"):
            break
        if name == b":method":
            method = value
        elif name == b":authority":
            authority = value
    return authority if method == b"CONNECT" else None
