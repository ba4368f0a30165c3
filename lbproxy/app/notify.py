# -*- test-case-name: tests.test_startup -*-
"""
systemd's readiness protocol (C{Type=notify}): one datagram, C{READY=1},
to the socket C{$NOTIFY_SOCKET} names, once the listeners are bound;
C{RELOADING=1} / C{READY=1} around a reload; C{STOPPING=1} at shutdown.
Nothing happens when the variable is not set (not started by systemd).
"""

from __future__ import annotations

import socket
from typing import Mapping, Optional

__all__ = ["notify_socket", "sd_notify"]


def notify_socket(environ: Mapping[str, str]) -> Optional[str]:
    """
    The address of the notification socket, or L{None}: a path, or an
    abstract name (C{"@name"} in the variable, a leading NUL on the wire).
    """
    address = environ.get("NOTIFY_SOCKET")
    if not address or address[0] not in "/@":
        return None
    if address[0] == "@":
        return "\0" + address[1:]
    return address


def sd_notify(message: str, environ: Mapping[str, str]) -> bool:
    """
    Send C{message} (e.g. C{"READY=1\\nSTATUS=..."}) to systemd.

    @param environ: the process environment (passed in: nothing below
        C{app/tap} reads it).
    @return: whether it was sent.
    """
    address = notify_socket(environ)
    if address is None:
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.connect(address)
        sock.sendall(message.encode("utf-8"))
    except OSError:
        return False
    finally:
        sock.close()
    return True
