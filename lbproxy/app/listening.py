# -*- test-case-name: tests.test_tap -*-
"""
Listening endpoint strings: splitting them, and giving every listener a
real listen backlog.

Twisted's C{tcp:}, C{ssl:} and C{unix:} endpoints listen with a backlog
of 50 unless told otherwise: a burst of more connections than that
overflows the accept queue, and every connection beyond it waits for a
SYN retransmit (a second). L{server_endpoint} adds C{backlog=} from
C{server.listen_backlog} to a description that sets none.
"""

from __future__ import annotations

from typing import List

from twisted.internet.endpoints import serverFromString

#: C{server.listen_backlog} unless set (nginx's default on Linux).
DEFAULT_BACKLOG = 511


def split_endpoint(description: str) -> List[str]:
    """
    Split an endpoint string on its colons; a backslash escapes the next
    character (C{interface=\\:\\:1}).
    """
    parts, current, escaped = [], [], False
    for char in description:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ":":
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def sets_backlog(description: str) -> bool:
    """
    Whether an endpoint string names its own C{backlog=}.
    """
    return any(part.startswith("backlog=") for part in split_endpoint(description)[1:])


def server_endpoint(reactor, description: str, backlog: int = DEFAULT_BACKLOG):
    """
    The server endpoint of C{description}, listening with C{backlog}
    unless the description sets one.

    An endpoint type that takes no C{backlog} argument (or a description
    that gives it positionally) is built as written.
    """
    if not sets_backlog(description):
        try:
            return serverFromString(reactor, "%s:backlog=%d" % (description, backlog))
        except TypeError:
            pass
    return serverFromString(reactor, description)
