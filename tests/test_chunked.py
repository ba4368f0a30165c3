"""
Chunked request bodies: L{lbproxy.frontend.chunked.StrictChunkedDecoder}
alone, and raw bytes through the proxy's channel. Every case is fed whole,
byte by byte and in odd splits: the answer must not depend on how the
bytes arrive.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from twisted.trial.unittest import SynchronousTestCase
from twisted.web.http import _MalformedChunkedDataError  # Twisted's, as the decoder raises it

from lbproxy.frontend.chunked import MAX_LINE, MIN_FRAMING, StrictChunkedDecoder
from lbproxy.testing import ProxyHarness

CONFIG = {
    "server": {"max_body_size": 0},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [{"pool": "web"}],
}
CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"

#: How the bytes of a body arrive: whole, byte by byte, in odd pieces.
SPLITS: Dict[str, Optional[Sequence[int]]] = {
    "whole": None,
    "bytes": (1,),
    "odd": (7, 4095, 3, 4097, 65536, 1),
}


def pieces(data: bytes, split: Optional[Sequence[int]]) -> List[bytes]:
    """
    C{data} cut into reads of the sizes in C{split}, repeated.
    """
    if split is None:
        return [data]
    out, index, turn = [], 0, 0
    while index < len(data):
        size = split[turn % len(split)]
        out.append(data[index : index + size])
        index += size
        turn += 1
    return out


def decode(data: bytes, split=None):
    """
    Feed C{data} to a decoder.

    @return: C{(body, rest)}: the body, and what followed it (L{None} if
        the body did not end).
    @raise _MalformedChunkedDataError: as the decoder does.
    """
    received, finished = [], []
    decoder = StrictChunkedDecoder(received.append, finished.append)
    for piece in pieces(data, split):
        decoder.dataReceived(piece)
    return b"".join(received), (finished[0] if finished else None)


def feed(client, data: bytes, split, stop: Callable[[], bool]) -> None:
    for piece in pieces(data, split):
        client.send(piece)
        if stop():
            break


class SplitTestCase(SynchronousTestCase):
    def everySplit(self, check: Callable[[Optional[Sequence[int]]], None]) -> None:
        for name, split in SPLITS.items():
            with self.subTest(split=name):
                check(split)

    def assertDecoded(self, data: bytes, body: bytes, rest: bytes = b"") -> None:
        self.everySplit(lambda split: self.assertEqual(decode(data, split), (body, rest)))

    def assertMalformed(self, data: bytes) -> None:
        def check(split):
            self.assertRaises(_MalformedChunkedDataError, decode, data, split)

        self.everySplit(check)

    def assertRefused(self, body: bytes) -> None:
        """
        The request with this chunked body gets 400 and is closed, however
        the bytes arrive; the backend never gets a complete request.
        """

        def check(split):
            proxy = ProxyHarness(CONFIG)
            client = proxy.client()
            client.send(CHUNKED)
            backend = proxy.accept()
            feed(client, body, split, lambda: client.transport.disconnecting)
            self.assertTrue(client.received().startswith(b"HTTP/1.1 400 "), client.received()[:40])
            self.assertTrue(client.transport.disconnecting)
            self.assertTrue(backend.transport.aborted)
            self.assertFalse(backend.received().endswith(b"0\r\n\r\n"))

        self.everySplit(check)

    def assertForwarded(self, body: bytes, payload: bytes) -> None:
        def check(split):
            proxy = ProxyHarness(CONFIG)
            client = proxy.client()
            client.send(CHUNKED)
            backend = proxy.accept()
            feed(client, body, split, lambda: client.transport.disconnecting)
            self.assertEqual(client.received(), b"")
            sent = backend.received().split(b"\r\n\r\n", 1)[1]
            self.assertEqual(decode(sent), (payload, b""))

        self.everySplit(check)


class LineLimitTests(SplitTestCase):
    """
    A chunk-size line (size and extensions) and a trailer line may be
    L{MAX_LINE} bytes long, CRLF not included, whether they come in one
    read or many.
    """

    def sizeLine(self, length: int) -> bytes:
        # "5;x=aaa...", exactly length bytes.
        return b"5;x=" + b"a" * (length - 4)

    def test_sizeLineAtLimit(self):
        data = self.sizeLine(MAX_LINE) + b"\r\nhello\r\n0\r\n\r\n"
        self.assertDecoded(data, b"hello")
        self.assertForwarded(data, b"hello")

    def test_sizeLineOverLimit(self):
        """
        One byte over the limit is refused, in one read too (a whole line
        used to be taken at any length).
        """
        self.assertMalformed(self.sizeLine(MAX_LINE + 1) + b"\r\nhello\r\n0\r\n\r\n")

    def test_longExtensionInOneRead(self):
        """
        The 60,000-byte chunk extension of the report, in one read.
        """
        data = self.sizeLine(60000) + b"\r\nhello\r\n0\r\n\r\n"
        self.assertMalformed(data)
        self.assertRefused(data)

    def test_longExtensionUnfinished(self):
        """
        A size line that has not ended is refused as soon as it is too
        long.
        """
        self.assertMalformed(self.sizeLine(MAX_LINE + 1))
        self.assertRefused(self.sizeLine(200000))

    def test_lastSizeLineOverLimit(self):
        self.assertMalformed(b"0;x=" + b"a" * MAX_LINE + b"\r\n\r\n")

    def test_trailerLineAtLimit(self):
        trailer = b"X-T: " + b"a" * (MAX_LINE - 5)
        self.assertDecoded(b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n", b"hello")

    def test_trailerLineOverLimit(self):
        trailer = b"X-T: " + b"a" * (MAX_LINE - 4)
        data = b"5\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n"
        self.assertMalformed(data)
        self.assertRefused(data)


def chunks(size: int, count: int, extension: bytes = b"") -> bytes:
    """
    C{count} chunks of C{size} bytes each, then the last chunk.
    """
    return b"%x%s\r\n%s\r\n" % (size, extension, b"x" * size) * count + b"0\r\n\r\n"


class ManyChunksTests(SplitTestCase):
    """
    Many small chunks: decoded in one pass per read, and refused once their
    framing outweighs their payload (past L{MIN_FRAMING} bytes of framing).
    """

    def test_onePiecePerRead(self):
        """
        The chunk data of one read is passed on in one piece.
        """
        received = []
        decoder = StrictChunkedDecoder(received.append, received.append)
        decoder.dataReceived(chunks(3, 1000)[:-5])
        self.assertEqual(received, [b"x" * 3000])
        decoder.dataReceived(b"0\r\n\r\nrest")
        self.assertEqual(received, [b"x" * 3000, b"rest"])

    def test_tinyChunksBelowMinimum(self):
        """
        Tiny chunks are fine while their framing stays under L{MIN_FRAMING}.
        """
        count = MIN_FRAMING // 5 - 1
        data = chunks(1, count)
        self.assertDecoded(data, b"x" * count)

    def test_tinyChunksRefused(self):
        """
        1-byte chunks (5 bytes of framing each) are refused once their
        framing passes L{MIN_FRAMING}, however they arrive.
        """
        data = chunks(1, MIN_FRAMING // 5 + 100)
        self.assertMalformed(data)
        self.assertRefused(data)

    def test_ratioBoundary(self):
        """
        Less framing than payload is accepted (6-byte chunks have 5 bytes of
        framing), more is not (4-byte chunks).
        """
        count = 2 * MIN_FRAMING // 5
        self.assertEqual(decode(chunks(6, count)), (b"x" * 6 * count, b""))
        self.assertRaises(_MalformedChunkedDataError, decode, chunks(4, count))

    def test_longExtensions(self):
        """
        Extensions count as framing: long ones on small chunks are refused
        after L{MIN_FRAMING} bytes.
        """
        data = chunks(16, 100, b";x=" + b"a" * 1000)
        self.assertMalformed(data)

    def test_bigChunkMakesRoom(self):
        """
        The payload counts from its size line: a big chunk first makes room
        for framing afterwards.
        """
        data = b"100000\r\n" + b"y" * 0x100000 + b"\r\n" + chunks(1, 30000)
        body, rest = decode(data)
        self.assertEqual((len(body), rest), (0x100000 + 30000, b""))

    def test_bareCarriageReturnInSizeLine(self):
        """
        A CR inside a size line is refused before the line ends.
        """
        self.assertMalformed(b"5\rx")
