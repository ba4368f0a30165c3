"""
CPU cost of chunked request bodies, in memory: C{python -m bench.chunked_cpu}.

Decodes 1 MB of payload sent as small chunks, read 64 KiB at a time, two
ways: through L{lbproxy.frontend.chunked.StrictChunkedDecoder} alone, and
through a whole proxy on a memory reactor (client channel, request body,
backend connection). Prints seconds of CPU per run (best of a few) and
microseconds per chunk. A measurement to compare revisions with, not a
test: nothing here passes or fails.

The chunk-framing ratio limit of the decoder (if this revision has one)
is lifted for the decoder-alone runs, so that the cost per chunk is
measured over the whole megabyte; the proxy runs show what a client
actually gets.
"""

from __future__ import annotations

import sys
import timeit

from lbproxy.frontend import chunked
from lbproxy.testing import ProxyHarness

PAYLOAD = 1024 * 1024
READ = 64 * 1024

CONFIG = {
    "server": {"max_body_size": 0},
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [{"pool": "web"}],
}
HEAD = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def body(size: int) -> bytes:
    chunk = b"%x\r\n%s\r\n" % (size, b"x" * size)
    return chunk * (PAYLOAD // size) + b"0\r\n\r\n"


def reads(data: bytes):
    return [data[i : i + READ] for i in range(0, len(data), READ)]


def decoder_alone(pieces) -> None:
    out = []
    decoder = chunked.StrictChunkedDecoder(out.append, out.append)
    # No ratio limit here: the cost of every chunk is what is measured.
    if hasattr(decoder, "maxFramingRatio"):
        decoder.maxFramingRatio = 0
    for piece in pieces:
        decoder.dataReceived(piece)


def through_proxy(pieces) -> bytes:
    proxy = ProxyHarness(CONFIG)
    client = proxy.client()
    client.send(HEAD)
    proxy.accept()
    for piece in pieces:
        client.send(piece)
        if client.transport.disconnecting:
            break
    return client.received()[:12]


def main(argv=None) -> int:
    for size in (1, 8, 64, 4096):
        pieces = reads(body(size))
        chunks = PAYLOAD // size
        alone = min(timeit.repeat(lambda: decoder_alone(pieces), number=1, repeat=3))
        proxied = min(timeit.repeat(lambda: through_proxy(pieces), number=1, repeat=3))
        answer = through_proxy(pieces).decode("ascii", "replace").strip() or "(forwarded)"
        print(
            "%5d-byte chunks (%7d): decoder %.3f s (%.2f us/chunk); "
            "proxy %.3f s, client got %s"
            % (size, chunks, alone, alone / chunks * 1e6, proxied, answer)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
