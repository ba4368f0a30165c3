# -*- test-case-name: tests.test_passthrough -*-
"""
Reading the server name (SNI) from a TLS ClientHello before any TLS is
done, to decide between relaying the connection undecrypted and
terminating it.  Pure: bytes in, a result out.

The ClientHello is a handshake message carried in one or more TLS
records (RFC 8446 5.1: a message may be split across records, and a
record may arrive in several reads): L{ClientHelloReader} takes the
bytes as they come and answers when it has the whole message.
"""

from __future__ import annotations

import struct
from typing import Optional

__all__ = ["MalformedHello", "ClientHelloReader", "server_name"]

_HANDSHAKE = 22
_CLIENT_HELLO = 1
_SERVER_NAME = 0
_HOST_NAME = 0
#: A ClientHello larger than this is refused (real ones are a few KiB,
#: with post-quantum key shares under 2 KiB more).
MAX_HELLO = 64 * 1024
_MAX_RECORD = 16384 + 2048


class MalformedHello(ValueError):
    """
    The bytes are not a TLS ClientHello.
    """


class ClientHelloReader:
    """
    Collects a ClientHello from the start of a connection.

    @ivar done: whether the whole ClientHello has arrived.
    @ivar serverName: the SNI host name (lower-cased ASCII), or L{None}
        when the ClientHello names none; meaningful once C{done}.
    @ivar received: every byte fed so far, to be passed on unchanged.
    """

    def __init__(self) -> None:
        self._records = b""
        self._handshake = b""
        self.received = b""
        self.done = False
        self.serverName: Optional[str] = None

    def feed(self, data: bytes) -> bool:
        """
        More bytes from the client.

        @return: whether the ClientHello is complete (C{done}).
        @raise MalformedHello: if the bytes cannot start a TLS connection.
        """
        if self.done:
            self.received += data
            return True
        self.received += data
        self._records += data
        buffer = self._records
        while len(buffer) >= 5:
            kind, major, _, length = struct.unpack("!BBBH", buffer[:5])
            if kind != _HANDSHAKE:
                raise MalformedHello("not a TLS handshake record (type %d)" % (kind,))
            if major != 3:
                raise MalformedHello("not a TLS record (version %d.x)" % (major,))
            if length == 0 or length > _MAX_RECORD:
                raise MalformedHello("bad TLS record length %d" % (length,))
            if len(buffer) < 5 + length:
                break
            self._handshake += buffer[5 : 5 + length]
            buffer = buffer[5 + length :]
            if self._parseHandshake():
                self.done = True
                return True
        self._records = buffer
        if len(self.received) > MAX_HELLO + 5 * 8:
            raise MalformedHello("ClientHello too large")
        return False

    def _parseHandshake(self) -> bool:
        handshake = self._handshake
        if not handshake:
            return False
        if handshake[0] != _CLIENT_HELLO:
            raise MalformedHello("first handshake message is not a ClientHello")
        if len(handshake) < 4:
            return False
        length = int.from_bytes(handshake[1:4], "big")
        if length > MAX_HELLO:
            raise MalformedHello("ClientHello too large (%d bytes)" % (length,))
        if len(handshake) < 4 + length:
            return False
        self.serverName = server_name(handshake[4 : 4 + length])
        return True


def server_name(body: bytes) -> Optional[str]:
    """
    The host name of a ClientHello's C{server_name} extension.

    @param body: the ClientHello message without its 4-byte header.
    @return: the name, lower-cased, or L{None} when there is none.
    @raise MalformedHello: if the message does not parse.
    """
    reader = _Reader(body)
    reader.take(2 + 32)  # legacy_version, random
    reader.vector(1)  # legacy_session_id
    suites = reader.vector(2)
    if not suites or len(suites) % 2:
        raise MalformedHello("bad cipher suites")
    reader.vector(1)  # legacy_compression_methods
    if reader.left == 0:
        return None  # no extensions (SSL 3 style)
    extensions = _Reader(reader.vector(2))
    if reader.left:
        raise MalformedHello("bytes after the extensions")
    name = None
    seen = set()
    while extensions.left:
        kind = extensions.integer(2)
        data = extensions.vector(2)
        if kind in seen:
            raise MalformedHello("extension %d twice" % (kind,))
        seen.add(kind)
        if kind == _SERVER_NAME:
            name = _hostName(data)
    return name


def _hostName(data: bytes) -> Optional[str]:
    names = _Reader(data)
    entries = _Reader(names.vector(2))
    if names.left:
        raise MalformedHello("bytes after the server name list")
    while entries.left:
        kind = entries.integer(1)
        value = entries.vector(2)
        if kind == _HOST_NAME:
            if not value:
                raise MalformedHello("empty server name")
            try:
                text = value.decode("ascii")
            except UnicodeDecodeError:
                raise MalformedHello("server name is not ASCII") from None
            if any(c <= " " or c == "\x7f" for c in text):
                raise MalformedHello("control character in the server name")
            return text.lower().rstrip(".")
    return None


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    @property
    def left(self) -> int:
        return len(self._data) - self._at

    def take(self, count: int) -> bytes:
        if count > self.left:
            raise MalformedHello("ClientHello cut short")
        piece = self._data[self._at : self._at + count]
        self._at += count
        return piece

    def integer(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, size: int) -> bytes:
        return self.take(self.integer(size))
