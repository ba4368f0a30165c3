# -*- test-case-name: tests.test_compress -*-
"""
Streaming encoders for response compression: gzip (zlib) and brotli
(the C{brotli} binding on CPython, C{brotlicffi} on PyPy: setup.cfg
installs the one that fits).  Every piece given is flushed at once, so a
streamed response (server-sent events, a long poll) is never held back.
"""

from __future__ import annotations

import zlib
from typing import Optional

try:
    import brotli as _brotli
except ImportError:  # PyPy: the CFFI binding, same Compressor API
    try:
        import brotlicffi as _brotli  # type: ignore[no-redef]
    except ImportError:
        _brotli = None  # type: ignore[assignment]

__all__ = ["BROTLI", "GZIP", "Encoder", "available", "new_encoder"]

GZIP = b"gzip"
BROTLI = b"br"

#: Defaults when a route gives no level: zlib's default, and the brotli
#: quality that costs about what gzip 6 does.
_DEFAULT_LEVEL = {GZIP: 6, BROTLI: 5}


class Encoder:
    """
    One response's encoder.
    """

    def encode(self, data: bytes) -> bytes:
        """
        Compress C{data} and flush: the bytes returned decode to all data
        given so far.
        """
        raise NotImplementedError()

    def finish(self) -> bytes:
        """
        The end of the encoded stream.
        """
        raise NotImplementedError()


class _Gzip(Encoder):
    def __init__(self, level: int) -> None:
        # wbits 31: the gzip wrapper (header and CRC trailer).
        self._z = zlib.compressobj(level, zlib.DEFLATED, 31)

    def encode(self, data: bytes) -> bytes:
        z = self._z
        return z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)

    def finish(self) -> bytes:
        return self._z.flush(zlib.Z_FINISH)


class _Brotli(Encoder):
    def __init__(self, quality: int) -> None:
        self._c = _brotli.Compressor(quality=quality)

    def encode(self, data: bytes) -> bytes:
        c = self._c
        return c.process(data) + c.flush()

    def finish(self) -> bytes:
        return self._c.finish()


def available() -> tuple:
    """
    The codings this process can produce, preferred first.
    """
    return (BROTLI, GZIP) if _brotli is not None else (GZIP,)


def new_encoder(coding: bytes, level: Optional[int] = None) -> Encoder:
    """
    An encoder for C{coding} (L{GZIP} or L{BROTLI}).
    """
    if level is None:
        level = _DEFAULT_LEVEL[coding]
    if coding == BROTLI:
        return _Brotli(level)
    return _Gzip(level)
