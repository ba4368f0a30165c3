"""
Tests for L{lbproxy.wire.http1}.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.wire.http1 import (
    LAST_CHUNK,
    MAX_HEAD,
    ProtocolError,
    ResponseParser,
    chunk,
    content_length,
    header_name_lower,
    is_token,
    request_head,
)

Event = Tuple[object, ...]


class RecordingHandler:
    """
    A response handler that records every call it gets, in order.
    """

    def __init__(self) -> None:
        self.events: List[Event] = []

    def responseHead(self, version, code, reason, headers) -> None:
        self.events.append(("head", version, code, reason, list(headers)))

    def responseBody(self, data) -> None:
        self.events.append(("body", data))

    def responseEnd(self) -> None:
        self.events.append(("end",))

    def coalesced(self) -> List[Event]:
        """
        The events with consecutive body pieces joined into one, so that
        different splits of the same input compare equal.
        """
        result: List[Event] = []
        for event in self.events:
            if event[0] == "body" and result and result[-1][0] == "body":
                result[-1] = ("body", result[-1][1] + event[1])
            else:
                result.append(event)
        return result

    def body(self) -> bytes:
        return b"".join(e[1] for e in self.events if e[0] == "body")


def splits(data: bytes) -> Iterator[List[bytes]]:
    """
    Every way of feeding C{data} that the tests compare: whole, cut in two
    at every position, and one byte at a time.
    """
    yield [data]
    for i in range(len(data) + 1):
        yield [data[:i], data[i:]]
    yield [data[i : i + 1] for i in range(len(data))]


def parse(pieces, method: bytes = b"GET", eof: bool = False):
    """
    Feed C{pieces} (bytes or a list of bytes) to a fresh parser expecting
    the response to C{method}.

    @return: the parser and its recording handler.
    """
    if isinstance(pieces, bytes):
        pieces = [pieces]
    handler = RecordingHandler()
    parser = ResponseParser(handler)
    parser.expect(method)
    for piece in pieces:
        parser.feed(piece)
    if eof:
        parser.eof()
    return parser, handler


class RequestHeadTests(SynchronousTestCase):
    """
    Tests for L{request_head}.
    """

    def test_noHeaders(self) -> None:
        """
        Without headers the head is the request line and an empty line.
        """
        self.assertEqual(
            request_head(b"GET", b"/a?b=c", []), b"GET /a?b=c HTTP/1.1\r\n\r\n"
        )

    def test_headersInOrder(self) -> None:
        """
        Headers are written in order, duplicates kept, names and values as given.
        """
        head = request_head(
            b"POST",
            b"/submit",
            [(b"Host", b"example.com"), (b"X-A", b"1"), (b"x-a", b"2")],
        )
        self.assertEqual(
            head,
            b"POST /submit HTTP/1.1\r\n"
            b"Host: example.com\r\n"
            b"X-A: 1\r\n"
            b"x-a: 2\r\n"
            b"\r\n",
        )

    def test_acceptsTuplesSequence(self) -> None:
        """
        Any sequence of pairs works, e.g. a tuple.
        """
        self.assertEqual(
            request_head(b"HEAD", b"*", ((b"A", b"b"),)),
            b"HEAD * HTTP/1.1\r\nA: b\r\n\r\n",
        )


class ChunkTests(SynchronousTestCase):
    """
    Tests for L{chunk} and L{LAST_CHUNK}.
    """

    def test_chunk(self) -> None:
        """
        A chunk is the hex size, CRLF, the data, CRLF.
        """
        self.assertEqual(chunk(b"hello"), b"5\r\nhello\r\n")

    def test_hexSize(self) -> None:
        """
        The size is written in lower-case hexadecimal.
        """
        self.assertEqual(chunk(b"x" * 26), b"1a\r\n" + b"x" * 26 + b"\r\n")
        self.assertEqual(chunk(b"x" * 4096)[:5], b"1000\r")

    def test_lastChunk(self) -> None:
        """
        The last chunk is a zero size and an empty trailer section.
        """
        self.assertEqual(LAST_CHUNK, b"0\r\n\r\n")

    def test_emptyDataIsNotTheLastChunk(self) -> None:
        """
        Chunking empty data writes nothing rather than a premature last chunk.
        """
        self.assertEqual(chunk(b""), b"")

    def test_roundTrip(self) -> None:
        """
        A body written with chunk() and LAST_CHUNK parses back to the same bytes.
        """
        body = [b"a", b"bc" * 20, b"\r\n0\r\n\r\n", b"z" * 300]
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"".join(chunk(b) for b in body)
            + LAST_CHUNK
        )
        parser, handler = parse(data)
        self.assertEqual(handler.body(), b"".join(body))
        self.assertEqual(handler.events[-1], ("end",))
        self.assertTrue(parser.done)


class ContentLengthTests(SynchronousTestCase):
    """
    Tests for L{content_length}.
    """

    def test_absent(self) -> None:
        """
        No Content-Length header gives None.
        """
        self.assertIsNone(content_length([(b"Host", b"a")]))
        self.assertIsNone(content_length([]))

    def test_single(self) -> None:
        """
        A single valid value is returned as an int, whatever the name's case.
        """
        self.assertEqual(content_length([(b"Content-Length", b"42")]), 42)
        self.assertEqual(content_length([(b"content-length", b"0")]), 0)
        self.assertEqual(content_length([(b"CONTENT-LENGTH", b" 7 ")]), 7)

    def test_repeatedSameValueInList(self) -> None:
        """
        A comma-separated list of identical values is that value.
        """
        self.assertEqual(content_length([(b"Content-Length", b"5, 5")]), 5)
        self.assertEqual(content_length([(b"Content-Length", b"5,5,5")]), 5)

    def test_repeatedSameValueInHeaders(self) -> None:
        """
        Several Content-Length headers with the same value are that value.
        """
        self.assertEqual(
            content_length([(b"Content-Length", b"5"), (b"content-length", b"5")]), 5
        )

    def test_conflictingList(self) -> None:
        """
        Different values in one header are an error.
        """
        self.assertRaises(
            ProtocolError, content_length, [(b"Content-Length", b"5, 6")]
        )

    def test_conflictingHeaders(self) -> None:
        """
        Two headers with different values are an error.
        """
        self.assertRaises(
            ProtocolError,
            content_length,
            [(b"Content-Length", b"5"), (b"Content-Length", b"6")],
        )

    def test_invalidValues(self) -> None:
        """
        Signs, hex, inner spaces, empty, non-digits and empty list items are errors.
        """
        for value in [b"+5", b"-5", b"0x5", b"1 0", b"", b" ", b"abc", b"5.0", b"5,"]:
            with self.subTest(value=value):
                self.assertRaises(
                    ProtocolError, content_length, [(b"Content-Length", value)]
                )

    def test_tooManyDigits(self) -> None:
        """
        Nineteen digits are accepted, twenty are an error.
        """
        self.assertEqual(
            content_length([(b"Content-Length", b"9" * 19)]), int("9" * 19)
        )
        self.assertRaises(
            ProtocolError, content_length, [(b"Content-Length", b"1" * 20)]
        )

    def test_leadingZeros(self) -> None:
        """
        Leading zeros are digits like any other.
        """
        self.assertEqual(content_length([(b"Content-Length", b"007")]), 7)


LENGTH_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 11\r\n"
    b"\r\n"
    b"hello world"
)

LENGTH_EVENTS = [
    (
        "head",
        b"HTTP/1.1",
        200,
        b"OK",
        [(b"Content-Type", b"text/plain"), (b"Content-Length", b"11")],
    ),
    ("body", b"hello world"),
    ("end",),
]

CHUNKED_RESPONSE = (
    b"HTTP/1.1 200 OK\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
    b"5;name=value\r\n"
    b"hello\r\n"
    b"1 ; a=b;c\r\n"
    b" \r\n"
    b"6\r\n"
    b"world!\r\n"
    b"0;last\r\n"
    b"Trailer-One: x\r\n"
    b"Trailer-Two: y\r\n"
    b"\r\n"
)

CHUNKED_EVENTS = [
    ("head", b"HTTP/1.1", 200, b"OK", [(b"Transfer-Encoding", b"chunked")]),
    ("body", b"hello world!"),
    ("end",),
]


class LengthBodyTests(SynchronousTestCase):
    """
    L{ResponseParser} with bodies delimited by C{Content-Length}.
    """

    def test_onePiece(self) -> None:
        """
        A whole response in one feed gives head, body, end.
        """
        parser, handler = parse(LENGTH_RESPONSE)
        self.assertEqual(handler.events, LENGTH_EVENTS)
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)

    def test_everySplit(self) -> None:
        """
        Every way of splitting the response gives the same events.
        """
        for pieces in splits(LENGTH_RESPONSE):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces)
                self.assertEqual(handler.coalesced(), LENGTH_EVENTS)
                self.assertTrue(parser.done)

    def test_byteByByteBodyPieces(self) -> None:
        """
        Fed byte by byte, each body byte is passed on as soon as it arrives.
        """
        pieces = [LENGTH_RESPONSE[i : i + 1] for i in range(len(LENGTH_RESPONSE))]
        parser, handler = parse(pieces)
        bodies = [e[1] for e in handler.events if e[0] == "body"]
        self.assertEqual(bodies, [bytes([b]) for b in b"hello world"])
        self.assertEqual(handler.events[-1], ("end",))

    def test_notDoneUntilBodyComplete(self) -> None:
        """
        The parser is not done, and no end is reported, while body bytes are missing.
        """
        parser, handler = parse(LENGTH_RESPONSE[:-1])
        self.assertFalse(parser.done)
        self.assertNotIn(("end",), handler.events)
        parser.feed(LENGTH_RESPONSE[-1:])
        self.assertTrue(parser.done)
        self.assertEqual(handler.coalesced(), LENGTH_EVENTS)

    def test_zeroLength(self) -> None:
        """
        Content-Length 0 ends the response with the head.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(
            handler.events,
            [("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"0")]), ("end",)],
        )
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)

    def test_eofMidBody(self) -> None:
        """
        The connection closing before Content-Length bytes arrived is an error.
        """
        parser, handler = parse(LENGTH_RESPONSE[:-3])
        self.assertRaises(ProtocolError, parser.eof)
        self.assertNotIn(("end",), handler.events)

    def test_eofAfterComplete(self) -> None:
        """
        The connection closing after a complete response is fine and reports nothing.
        """
        parser, handler = parse(LENGTH_RESPONSE, eof=True)
        self.assertEqual(handler.events, LENGTH_EVENTS)

    def test_eofBeforeAnything(self) -> None:
        """
        The connection closing before any response byte is an error.
        """
        parser, handler = parse(b"")
        self.assertRaises(ProtocolError, parser.eof)
        self.assertEqual(handler.events, [])

    def test_eofMidHead(self) -> None:
        """
        The connection closing in the middle of the head is an error.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\nContent-Le")
        self.assertRaises(ProtocolError, parser.eof)
        self.assertEqual(handler.events, [])

    def test_binaryBody(self) -> None:
        """
        Body bytes are passed through untouched, CR, LF and NUL included.
        """
        body = bytes(range(256)) + b"\r\n\r\n"
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        self.assertEqual(handler.body(), body)
        self.assertTrue(parser.done)


class ChunkedBodyTests(SynchronousTestCase):
    """
    L{ResponseParser} with chunked bodies.
    """

    def test_onePiece(self) -> None:
        """
        Extensions are ignored, trailers dropped, the data of all chunks passed on.
        """
        parser, handler = parse(CHUNKED_RESPONSE)
        self.assertEqual(handler.coalesced(), CHUNKED_EVENTS)
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)

    def test_everySplit(self) -> None:
        """
        Every way of splitting a chunked response gives the same events.
        """
        for pieces in splits(CHUNKED_RESPONSE):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces)
                self.assertEqual(handler.coalesced(), CHUNKED_EVENTS)
                self.assertTrue(parser.done)

    def test_notDoneBeforeTrailerEnd(self) -> None:
        """
        The response ends only at the empty line after the last chunk's trailers.
        """
        parser, handler = parse(CHUNKED_RESPONSE[:-2])
        self.assertFalse(parser.done)
        self.assertNotIn(("end",), handler.events)
        parser.feed(CHUNKED_RESPONSE[-2:])
        self.assertTrue(parser.done)

    def test_noTrailers(self) -> None:
        """
        A last chunk directly followed by the empty line ends the body.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        self.assertEqual(handler.body(), b"abc")
        self.assertEqual(handler.events[-1], ("end",))
        self.assertTrue(parser.done)

    def test_emptyChunkedBody(self) -> None:
        """
        A chunked body of only the last chunk is an empty body.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        )
        self.assertEqual(
            handler.events,
            [
                ("head", b"HTTP/1.1", 200, b"OK", [(b"Transfer-Encoding", b"chunked")]),
                ("end",),
            ],
        )

    def test_uppercaseHex(self) -> None:
        """
        Chunk sizes in upper-case (and mixed-case) hex are accepted.
        """
        data = b"x" * 0x1A + b"y" * 0xAB
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"1A\r\n" + b"x" * 0x1A + b"\r\n"
            b"aB\r\n" + b"y" * 0xAB + b"\r\n"
            b"0\r\n\r\n"
        )
        self.assertEqual(handler.body(), data)
        self.assertTrue(parser.done)

    def test_leadingZerosInSize(self) -> None:
        """
        Leading zeros in a chunk size are accepted.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0003\r\nabc\r\n000\r\n\r\n"
        )
        self.assertEqual(handler.body(), b"abc")
        self.assertTrue(parser.done)

    def test_sixteenHexDigits(self) -> None:
        """
        A chunk size of sixteen hex digits is accepted.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0000000000000002\r\nab"
        )
        self.assertEqual(handler.body(), b"ab")
        self.assertFalse(parser.done)

    def test_invalidChunkSizes(self) -> None:
        """
        Signs, 0x prefixes, empty sizes, 17 digits and non-hex are errors.
        """
        for size in [
            b"-1",
            b"0x5",
            b"+5",
            b"",
            b";ext",
            b"1" * 17,
            b"0" * 17,
            b"g",
            b"5g",
            b"5 5",
            b"\xff",
        ]:
            with self.subTest(size=size):
                self.assertRaises(
                    ProtocolError,
                    parse,
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + size
                    + b"\r\nhello\r\n0\r\n\r\n",
                )

    def test_chunkDataNotFollowedByCRLF(self) -> None:
        """
        Chunk data longer than its size (no CRLF after it) is an error.
        """
        self.assertRaises(
            ProtocolError,
            parse,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhelloXX\r\n0\r\n\r\n",
        )

    def test_chunkDataDirectlyFollowedByNextSize(self) -> None:
        """
        Chunk data followed by the next size line without CRLF is an error.
        """
        self.assertRaises(
            ProtocolError,
            parse,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello0\r\n\r\n",
        )

    def test_chunkDataNotFollowedByCRLFByteByByte(self) -> None:
        """
        The missing CRLF after chunk data is found when fed byte by byte too.
        """
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhelloXX\r\n0\r\n\r\n"
        )
        handler = RecordingHandler()
        parser = ResponseParser(handler)
        parser.expect(b"GET")

        def feedAll() -> None:
            for i in range(len(data)):
                parser.feed(data[i : i + 1])

        self.assertRaises(ProtocolError, feedAll)

    def test_framingLineTooLong(self) -> None:
        """
        A chunk-size line longer than MAX_HEAD without a newline is an error.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;"
        )
        self.assertRaises(ProtocolError, parser.feed, b"x" * (MAX_HEAD + 1))

    def test_eofMidChunk(self) -> None:
        """
        The connection closing inside chunk data is an error.
        """
        parser, handler = parse(CHUNKED_RESPONSE[: CHUNKED_RESPONSE.index(b"hello") + 2])
        self.assertRaises(ProtocolError, parser.eof)
        self.assertNotIn(("end",), handler.events)

    def test_eofBeforeLastChunk(self) -> None:
        """
        The connection closing between chunks, before the last one, is an error.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
        )
        self.assertRaises(ProtocolError, parser.eof)

    def test_eofInTrailers(self) -> None:
        """
        The connection closing after the last chunk but before the final empty line is an error.
        """
        parser, handler = parse(CHUNKED_RESPONSE[:-2])
        self.assertRaises(ProtocolError, parser.eof)

    def test_bareLFFraming(self) -> None:
        """
        Chunk framing lines ending in a bare LF are accepted.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\nabc\n0\n\n"
        )
        self.assertEqual(handler.body(), b"abc")
        self.assertTrue(parser.done)


class UntilCloseBodyTests(SynchronousTestCase):
    """
    L{ResponseParser} with bodies delimited by the connection closing.
    """

    RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsome body\r\n\r\nmore"

    def test_completedByEof(self) -> None:
        """
        Without Content-Length or chunking the body runs until eof().
        """
        parser, handler = parse(self.RESPONSE)
        self.assertFalse(parser.done)
        self.assertNotIn(("end",), handler.events)
        parser.eof()
        self.assertTrue(parser.done)
        self.assertFalse(parser.keepAlive)
        self.assertEqual(
            handler.coalesced(),
            [
                ("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Type", b"text/plain")]),
                ("body", b"some body\r\n\r\nmore"),
                ("end",),
            ],
        )

    def test_everySplit(self) -> None:
        """
        Every way of splitting a read-until-close response gives the same events.
        """
        expected = parse(self.RESPONSE, eof=True)[1].coalesced()
        for pieces in splits(self.RESPONSE):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces, eof=True)
                self.assertEqual(handler.coalesced(), expected)

    def test_emptyBody(self) -> None:
        """
        eof() straight after the head ends an empty read-until-close body.
        """
        parser, handler = parse(b"HTTP/1.0 200 OK\r\n\r\n", eof=True)
        self.assertEqual(
            handler.events, [("head", b"HTTP/1.0", 200, b"OK", []), ("end",)]
        )

    def test_keepAliveFalse(self) -> None:
        """
        A read-until-close body never allows keep-alive, even with HTTP/1.1.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n\r\n")
        self.assertFalse(parser.keepAlive)
        parser.eof()
        self.assertFalse(parser.keepAlive)


class NoBodyTests(SynchronousTestCase):
    """
    Responses that never have a body whatever their headers say.
    """

    def test_headWithContentLength(self) -> None:
        """
        The response to HEAD ends with its head, Content-Length notwithstanding.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", method=b"HEAD"
        )
        self.assertEqual(
            handler.events,
            [
                ("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"1234")]),
                ("end",),
            ],
        )
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)

    def test_headWithChunked(self) -> None:
        """
        The response to HEAD ends with its head, Transfer-Encoding notwithstanding.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", method=b"HEAD"
        )
        self.assertEqual([e[0] for e in handler.events], ["head", "end"])
        self.assertTrue(parser.done)

    def test_headThenBytesIsError(self) -> None:
        """
        Body bytes fed after the head of a HEAD response are an error.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", method=b"HEAD"
        )
        self.assertRaises(ProtocolError, parser.feed, b"hello")

    def test_204And304(self) -> None:
        """
        204 and 304 responses end with their head, Content-Length notwithstanding.
        """
        for code, reason in [(204, b"No Content"), (304, b"Not Modified")]:
            with self.subTest(code=code):
                parser, handler = parse(
                    b"HTTP/1.1 %d %s\r\nContent-Length: 10\r\n\r\n" % (code, reason)
                )
                self.assertEqual(
                    handler.events,
                    [
                        ("head", b"HTTP/1.1", code, reason, [(b"Content-Length", b"10")]),
                        ("end",),
                    ],
                )
                self.assertTrue(parser.done)
                self.assertTrue(parser.keepAlive)

    def test_204WithoutHeaders(self) -> None:
        """
        A 204 without framing headers is not a read-until-close response.
        """
        parser, handler = parse(b"HTTP/1.1 204 No Content\r\n\r\n")
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)
        self.assertEqual([e[0] for e in handler.events], ["head", "end"])


class InterimResponseTests(SynchronousTestCase):
    """
    1xx responses before the final one.
    """

    FINAL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    FINAL_EVENTS = [
        ("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"2")]),
        ("body", b"ok"),
        ("end",),
    ]

    def test_continueSkipped(self) -> None:
        """
        A 100 Continue is not reported; the final response is.
        """
        parser, handler = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + self.FINAL)
        self.assertEqual(handler.events, self.FINAL_EVENTS)

    def test_earlyHintsSkipped(self) -> None:
        """
        A 103 Early Hints with headers is not reported; the final response is.
        """
        parser, handler = parse(
            b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
            + self.FINAL
        )
        self.assertEqual(handler.events, self.FINAL_EVENTS)

    def test_severalInterim(self) -> None:
        """
        Several interim responses in a row are all skipped, at every split.
        """
        data = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\n\r\n" + self.FINAL
        )
        for pieces in splits(data):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces)
                self.assertEqual(handler.coalesced(), self.FINAL_EVENTS)
                self.assertTrue(parser.done)

    def test_interimAloneNotDone(self) -> None:
        """
        After only an interim response the parser waits for the final one.
        """
        parser, handler = parse(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertFalse(parser.done)
        self.assertEqual(handler.events, [])
        self.assertRaises(ProtocolError, parser.eof)

    def test_switchingProtocols(self) -> None:
        """
        A 101 Switching Protocols is an error: lbproxy does not upgrade.
        """
        self.assertRaises(
            ProtocolError,
            parse,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
        )


class KeepAliveTests(SynchronousTestCase):
    """
    L{ResponseParser.keepAlive}.
    """

    def keepAlive(self, head: bytes, body: bytes = b"") -> bool:
        parser, handler = parse(head + body)
        self.assertTrue(parser.done)
        return parser.keepAlive

    def test_http11Default(self) -> None:
        """
        HTTP/1.1 with a delimited body allows keep-alive by default.
        """
        self.assertTrue(self.keepAlive(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n", b"x"))

    def test_http11Close(self) -> None:
        """
        HTTP/1.1 with Connection: close (any case, among other tokens) does not.
        """
        for value in [b"close", b"Close", b"keep-alive, close", b" CLOSE ,x-foo"]:
            with self.subTest(value=value):
                self.assertFalse(
                    self.keepAlive(
                        b"HTTP/1.1 200 OK\r\nConnection: %s\r\nContent-Length: 0\r\n\r\n"
                        % (value,)
                    )
                )

    def test_http11CloseInSecondConnectionHeader(self) -> None:
        """
        close in a second Connection header counts too.
        """
        self.assertFalse(
            self.keepAlive(
                b"HTTP/1.1 200 OK\r\nConnection: x-foo\r\n"
                b"connection: close\r\nContent-Length: 0\r\n\r\n"
            )
        )

    def test_http10Default(self) -> None:
        """
        HTTP/1.0 does not allow keep-alive by default.
        """
        self.assertFalse(self.keepAlive(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n", b"x"))

    def test_http10KeepAlive(self) -> None:
        """
        HTTP/1.0 with Connection: keep-alive (any case) allows keep-alive.
        """
        for value in [b"keep-alive", b"Keep-Alive", b"x-foo, keep-alive"]:
            with self.subTest(value=value):
                self.assertTrue(
                    self.keepAlive(
                        b"HTTP/1.0 200 OK\r\nConnection: %s\r\nContent-Length: 0\r\n\r\n"
                        % (value,)
                    )
                )

    def test_untilClose(self) -> None:
        """
        A read-until-close body does not allow keep-alive.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\n\r\nabc", eof=True)
        self.assertFalse(parser.keepAlive)

    def test_chunkedAndContentLength(self) -> None:
        """
        With chunked and Content-Length, chunking frames the body and keep-alive is off.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n0\r\n\r\n"
        )
        self.assertEqual(handler.body(), b"abc")
        self.assertTrue(parser.done)
        self.assertFalse(parser.keepAlive)

    def test_otherCodingLastIsUntilClose(self) -> None:
        """
        A Transfer-Encoding whose last coding is not chunked is read until close.
        """
        for value in [b"gzip", b"chunked, gzip", b"identity"]:
            with self.subTest(value=value):
                parser, handler = parse(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: %s\r\n"
                    b"Content-Length: 3\r\n\r\nabcdef" % (value,)
                )
                self.assertFalse(parser.done)
                parser.eof()
                self.assertEqual(handler.body(), b"abcdef")
                self.assertEqual(handler.events[-1], ("end",))
                self.assertFalse(parser.keepAlive)

    def test_chunkedLastOfSeveral(self) -> None:
        """
        chunked as the last of several codings (any case, any header) frames the body.
        """
        for headers in [
            b"Transfer-Encoding: gzip, chunked\r\n",
            b"Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n",
        ]:
            with self.subTest(headers=headers):
                parser, handler = parse(
                    b"HTTP/1.1 200 OK\r\n" + headers + b"\r\n2\r\nab\r\n0\r\n\r\n"
                )
                self.assertEqual(handler.body(), b"ab")
                self.assertTrue(parser.done)
                self.assertTrue(parser.keepAlive)


class ContentLengthFramingTests(SynchronousTestCase):
    """
    Content-Length values in responses.
    """

    def test_repeatedSameValue(self) -> None:
        """
        5, 5 in one header frames a five-byte body.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"
        )
        self.assertEqual(handler.body(), b"hello")
        self.assertTrue(parser.done)

    def test_twoHeadersSameValue(self) -> None:
        """
        Two Content-Length headers of 5 frame a five-byte body.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello"
        )
        self.assertEqual(handler.body(), b"hello")
        self.assertTrue(parser.done)

    def test_invalid(self) -> None:
        """
        Conflicting or malformed Content-Length values are errors, and no head is reported.
        """
        for headers in [
            b"Content-Length: 5, 6\r\n",
            b"Content-Length: 5\r\nContent-Length: 6\r\n",
            b"Content-Length: +5\r\n",
            b"Content-Length: 0x5\r\n",
            b"Content-Length: 1 0\r\n",
            b"Content-Length:\r\n",
            b"Content-Length: -1\r\n",
            b"Content-Length: " + b"1" * 20 + b"\r\n",
        ]:
            with self.subTest(headers=headers):
                handler = RecordingHandler()
                parser = ResponseParser(handler)
                parser.expect(b"GET")
                self.assertRaises(
                    ProtocolError,
                    parser.feed,
                    b"HTTP/1.1 200 OK\r\n" + headers + b"\r\nhello",
                )
                self.assertEqual(handler.events, [])


class HeadParsingTests(SynchronousTestCase):
    """
    Status lines and header lines.
    """

    def test_tooLargeWithoutEnd(self) -> None:
        """
        More than MAX_HEAD bytes without the end of the head is an error.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\nX: ")
        self.assertRaises(ProtocolError, parser.feed, b"a" * MAX_HEAD)

    def test_tooLargeIncrementally(self) -> None:
        """
        A head growing past MAX_HEAD in small pieces is an error before it ends.
        """
        handler = RecordingHandler()
        parser = ResponseParser(handler)
        parser.expect(b"GET")
        parser.feed(b"HTTP/1.1 200 OK\r\n")

        def feedLines() -> None:
            for i in range(MAX_HEAD // 16 + 2):
                parser.feed(b"X-%010d: a\r\n" % (i,))

        self.assertRaises(ProtocolError, feedLines)
        self.assertEqual(handler.events, [])

    def test_tooLargeWithEnd(self) -> None:
        """
        A complete head longer than MAX_HEAD is an error.
        """
        self.assertRaises(
            ProtocolError,
            parse,
            b"HTTP/1.1 200 OK\r\nX: " + b"a" * MAX_HEAD + b"\r\nContent-Length: 0\r\n\r\n",
        )

    def test_largestHeadAccepted(self) -> None:
        """
        A head of exactly MAX_HEAD bytes (before the empty line) is accepted.
        """
        start = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: "
        head = start + b"a" * (MAX_HEAD - len(start))
        self.assertEqual(len(head), MAX_HEAD)
        parser, handler = parse(head + b"\r\n\r\n")
        self.assertTrue(parser.done)
        self.assertEqual(handler.events[0][4][-1], (b"X", b"a" * (MAX_HEAD - len(start))))

    def test_invalidStatusLines(self) -> None:
        """
        Other versions, codes that are not three digits, and garbage are errors.
        """
        for line in [
            b"HTTP/2 200 OK",
            b"HTTP/2.0 200 OK",
            b"HTTP/0.9 200 OK",
            b"http/1.1 200 OK",
            b"HTTP/1.1 20",
            b"HTTP/1.1 2000 OK",
            b"HTTP/1.1 abc",
            b"HTTP/1.1 -20 OK",
            b"HTTP/1.1 +20 OK",
            b"HTTP/1.1  200 OK",
            b"HTTP/1.1",
            b"HTTP/1.1200 OK",
            b"",
            b"garbage",
            b"\x00\x01\x02",
            b" HTTP/1.1 200 OK",
        ]:
            with self.subTest(line=line):
                self.assertRaises(
                    ProtocolError, parse, line + b"\r\nContent-Length: 0\r\n\r\n"
                )

    def test_statusLineWithoutReason(self) -> None:
        """
        A status line without a reason phrase gives an empty reason.
        """
        parser, handler = parse(b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(handler.events[0][1:4], (b"HTTP/1.1", 404, b""))

    def test_reasonWithSpaces(self) -> None:
        """
        The reason phrase is everything after the code, spaces included.
        """
        parser, handler = parse(
            b"HTTP/1.0 503 Service  Unavailable \r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(
            handler.events[0][1:4], (b"HTTP/1.0", 503, b"Service  Unavailable ")
        )

    def test_obsFold(self) -> None:
        """
        A header line starting with a space or tab (obs-fold) is an error.
        """
        for fold in [b" continued", b"\tcontinued"]:
            with self.subTest(fold=fold):
                self.assertRaises(
                    ProtocolError,
                    parse,
                    b"HTTP/1.1 200 OK\r\nX-A: a\r\n" + fold + b"\r\nContent-Length: 0\r\n\r\n",
                )

    def test_knownNameWithoutColon(self) -> None:
        """
        A line that is only a header name already seen (and so not checked
        again) is still an error: the colon is required.
        """
        parse(b"HTTP/1.1 200 OK\r\nX-Seen: 1\r\nContent-Length: 0\r\n\r\n")
        self.assertRaises(
            ProtocolError, parse, b"HTTP/1.1 200 OK\r\nX-Seen\r\nContent-Length: 0\r\n\r\n"
        )

    def test_invalidHeaderLines(self) -> None:
        """
        Names with spaces or non-token bytes, empty names, lines without colon are errors.
        """
        for line in [
            b"Bad Name: x",
            b"Name : x",
            b"NoColon",
            b": empty name",
            b"Na\x00me: x",
            b"N\xe9: x",
            b"(x): y",
        ]:
            with self.subTest(line=line):
                self.assertRaises(
                    ProtocolError,
                    parse,
                    b"HTTP/1.1 200 OK\r\n" + line + b"\r\nContent-Length: 0\r\n\r\n",
                )

    def test_invalidCharactersInValue(self) -> None:
        """
        NUL or a bare CR in a header value is an error.
        """
        for value in [b"a\x00b", b"\x00", b"a\rb"]:
            with self.subTest(value=value):
                self.assertRaises(
                    ProtocolError,
                    parse,
                    b"HTTP/1.1 200 OK\r\nX-A: " + value + b"\r\nContent-Length: 0\r\n\r\n",
                )

    def test_valueWhitespace(self) -> None:
        """
        Spaces and tabs around a value are dropped, inner ones kept; empty values are allowed.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nX-A: \t a  b \t\r\nX-B:\r\nX-C:c\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(
            handler.events[0][4],
            [(b"X-A", b"a  b"), (b"X-B", b""), (b"X-C", b"c"), (b"Content-Length", b"0")],
        )

    def test_colonInValue(self) -> None:
        """
        Only the first colon separates name from value.
        """
        parser, handler = parse(
            b"HTTP/1.1 302 Found\r\nLocation: http://a:8080/x\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(handler.events[0][4][0], (b"Location", b"http://a:8080/x"))

    def test_setCookieOrder(self) -> None:
        """
        Repeated Set-Cookie headers are all kept, in order, names as sent.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\n"
            b"Set-Cookie: a=1; Path=/\r\n"
            b"X-Other: o\r\n"
            b"set-cookie: b=2\r\n"
            b"Set-Cookie: c=3, d=4\r\n"
            b"Content-Length: 0\r\n\r\n"
        )
        self.assertEqual(
            handler.events[0][4],
            [
                (b"Set-Cookie", b"a=1; Path=/"),
                (b"X-Other", b"o"),
                (b"set-cookie", b"b=2"),
                (b"Set-Cookie", b"c=3, d=4"),
                (b"Content-Length", b"0"),
            ],
        )

    def test_bareLF(self) -> None:
        """
        A head with bare-LF line endings (ending in \\n\\n) is accepted.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\nContent-Length: 3\nX-A: b\n\nabc"
        )
        self.assertEqual(
            handler.events,
            [
                (
                    "head",
                    b"HTTP/1.1",
                    200,
                    b"OK",
                    [(b"Content-Length", b"3"), (b"X-A", b"b")],
                ),
                ("body", b"abc"),
                ("end",),
            ],
        )

    def test_bareLFEverySplit(self) -> None:
        """
        A bare-LF response gives the same events at every split.
        """
        data = b"HTTP/1.1 200 OK\nContent-Length: 3\n\nabc"
        for pieces in splits(data):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces)
                self.assertEqual(handler.coalesced()[1], ("body", b"abc"))
                self.assertTrue(parser.done)

    def test_bareLFHeadWithCRLFInBody(self) -> None:
        """
        A bare-LF head ends at its first empty line even when the body contains CRLFCRLF.
        """
        data = b"HTTP/1.1 200 OK\nContent-Length: 6\n\nab\r\n\r\n"
        for pieces in splits(data):
            with self.subTest(pieces=pieces):
                parser, handler = parse(pieces)
                self.assertEqual(
                    handler.coalesced(),
                    [
                        ("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"6")]),
                        ("body", b"ab\r\n\r\n"),
                        ("end",),
                    ],
                )

    def test_bareLFInterimThenCRLFFinal(self) -> None:
        """
        A bare-LF interim response followed by a CRLF final one in the same feed is parsed.
        """
        parser, handler = parse(
            b"HTTP/1.1 100 Continue\n\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        )
        self.assertEqual(
            handler.events,
            [("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"0")]), ("end",)],
        )

    def test_lfThenCRLFEndsHead(self) -> None:
        """
        A bare-LF header line followed by a CRLF empty line ends the head.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\nContent-Length: 0\n\r\n")
        self.assertTrue(parser.done)
        self.assertEqual([e[0] for e in handler.events], ["head", "end"])

    def test_crlfThenLFEndsHead(self) -> None:
        """
        A CRLF header line followed by a bare-LF empty line ends the head.
        """
        parser, handler = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n")
        self.assertTrue(parser.done)
        self.assertEqual([e[0] for e in handler.events], ["head", "end"])


class ConnectionReuseTests(SynchronousTestCase):
    """
    The parser's life across responses on one connection.
    """

    def test_bytesAfterResponse(self) -> None:
        """
        Bytes after a complete response in the same feed end it, but are
        dropped, never parsed as a response, and the connection is not
        kept alive.
        """
        for response in (LENGTH_RESPONSE, CHUNKED_RESPONSE):
            parser, handler = parse(response)
            events = handler.coalesced()
            self.assertTrue(parser.keepAlive)
            parser, handler = parse(response + b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            self.assertEqual(handler.coalesced(), events)
            self.assertTrue(parser.done)
            self.assertFalse(parser.keepAlive)

    def test_bytesAfterBodilessResponse(self) -> None:
        """
        The same after a HEAD, 204 or zero-length response.
        """
        for response, method in [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", b"HEAD"),
            (b"HTTP/1.1 204 No Content\r\n\r\n", b"GET"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", b"GET"),
        ]:
            parser, handler = parse(response + b"hello", method=method)
            self.assertEqual(handler.events[-1], ("end",))
            self.assertEqual(handler.body(), b"")
            self.assertFalse(parser.keepAlive)

    def test_nextRequestFromResponseEnd(self) -> None:
        """
        A handler that expects the next response from C{responseEnd} (a
        pipelined request on the same connection) is not handed the bytes
        that came after the previous one.
        """

        class Next(RecordingHandler):
            def responseEnd(self) -> None:
                RecordingHandler.responseEnd(self)
                parser.expect(b"GET")

        handler = Next()
        parser = ResponseParser(handler)
        parser.expect(b"GET")
        parser.feed(LENGTH_RESPONSE + LENGTH_RESPONSE)
        self.assertEqual(handler.coalesced(), LENGTH_EVENTS)
        self.assertFalse(parser.keepAlive)

    def test_bytesAfterResponseLaterFeed(self) -> None:
        """
        Bytes fed after a complete response are an error.
        """
        parser, handler = parse(LENGTH_RESPONSE)
        self.assertRaises(ProtocolError, parser.feed, b"HTTP/1.1 200 OK\r\n")

    def test_feedBeforeExpect(self) -> None:
        """
        Bytes fed before any request was sent are an error.
        """
        parser = ResponseParser(RecordingHandler())
        self.assertTrue(parser.done)
        self.assertRaises(ProtocolError, parser.feed, b"HTTP/1.1 200 OK\r\n\r\n")

    def test_secondResponse(self) -> None:
        """
        After expect() again a second response on the same parser is parsed.
        """
        parser, handler = parse(LENGTH_RESPONSE)
        self.assertTrue(parser.keepAlive)
        parser.expect(b"GET")
        self.assertFalse(parser.done)
        self.assertFalse(parser.keepAlive)
        parser.feed(CHUNKED_RESPONSE)
        self.assertEqual(handler.coalesced(), LENGTH_EVENTS + CHUNKED_EVENTS)
        self.assertTrue(parser.done)
        self.assertTrue(parser.keepAlive)

    def test_headThenGet(self) -> None:
        """
        A HEAD response then a GET response on one parser are each framed by their method.
        """
        parser, handler = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n", method=b"HEAD"
        )
        parser.expect(b"GET")
        parser.feed(LENGTH_RESPONSE)
        self.assertEqual(
            handler.coalesced(),
            [
                ("head", b"HTTP/1.1", 200, b"OK", [(b"Content-Length", b"11")]),
                ("end",),
            ]
            + LENGTH_EVENTS,
        )

    def test_expectDiscardsBuffer(self) -> None:
        """
        expect() discards a partial head left over from before.
        """
        handler = RecordingHandler()
        parser = ResponseParser(handler)
        parser.expect(b"GET")
        parser.feed(b"HTTP/1.1 200 O")
        parser.expect(b"GET")
        parser.feed(LENGTH_RESPONSE)
        self.assertEqual(handler.coalesced(), LENGTH_EVENTS)

    def test_started(self) -> None:
        """
        started is False until the first byte of a response, and expect() resets it.
        """
        handler = RecordingHandler()
        parser = ResponseParser(handler)
        self.assertFalse(parser.started)
        parser.expect(b"GET")
        self.assertFalse(parser.started)
        parser.feed(b"")
        self.assertFalse(parser.started)
        parser.feed(b"H")
        self.assertTrue(parser.started)
        parser.feed(LENGTH_RESPONSE[1:])
        self.assertTrue(parser.started)
        parser.expect(b"GET")
        self.assertFalse(parser.started)

    def test_startedByInterim(self) -> None:
        """
        An interim response alone sets started.
        """
        parser, handler = parse(b"HTTP/1.1 100 Continue\r\n\r\n")
        self.assertTrue(parser.started)
        self.assertEqual(handler.events, [])


class TokenTests(SynchronousTestCase):
    """
    Tests for L{is_token} and L{header_name_lower}.
    """

    def test_tokens(self) -> None:
        for value in [b"GET", b"X-Request-Id", b"!#$%&'*+-.^_`|~09az", "PATCH"]:
            self.assertTrue(is_token(value), value)

    def test_notTokens(self) -> None:
        """
        Empty, spaces, separators, non-ASCII and a trailing newline are not
        tokens.
        """
        for value in [b"", b"G T", b"X:", b"X\n", "X\n", b"\xe9", "X\u00e9", b"a\x00"]:
            self.assertFalse(is_token(value), value)

    def test_headerNameLower(self) -> None:
        self.assertEqual(header_name_lower(b"X-Seen-Name"), b"x-seen-name")
        self.assertEqual(header_name_lower(b"X-Seen-Name"), b"x-seen-name")
        self.assertIsNone(header_name_lower(b"X Bad"))
        self.assertIsNone(header_name_lower(b"X-Bad\n"))
