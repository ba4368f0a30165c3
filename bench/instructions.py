"""
Instructions per proxied request, counted by valgrind's callgrind (not a
test): a count that does not depend on what else the machine is doing, so
a change to the hot path can be compared with the previous main exactly,
where wrk's figures vary by 15-25 % from round to round.

The work counted: N keep-alive requests through the in-memory proxy
(L{lbproxy.testing.ProxyHarness}: the whole request path from client bytes
to backend bytes and back, on a memory reactor, with the default request
id and an access log), minus the same with fewer requests, so start-up
cancels out.

Usage (from the repository root; needs Debian's valgrind)::

    .venv/bin/python -m bench.instructions [--baseline-root DIR] [--requests N]

With C{--baseline-root} (a tree of another commit, e.g. from
C{git archive OLD | tar -x -C DIR}) both trees are counted with this
interpreter and the ratio is printed.  Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from typing import Dict

#: The program valgrind runs, in the tree under test (its working directory
#: and first on sys.path).
_PROGRAM = r"""
import sys
sys.path.insert(0, ".")
from lbproxy.testing import ProxyHarness
count = int(sys.argv[1])
proxy = ProxyHarness({
    "pools": {"web": {"targets": ["10.1.0.1:80"]}},
    "routes": [{"pool": "web", "path": "/"}],
})
request = (b"GET /x?q=1 HTTP/1.1\r\nHost: www.mango.com\r\n"
           b"User-Agent: wrk\r\nAccept: */*\r\n\r\n")
response = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
client = proxy.client()
client.send(request)
backend = proxy.accept()
backend.respond(response)
proxy.reactor.advance(0)
for _ in range(count):
    client.transport.clear()
    backend.transport.clear()
    client.send(request)
    backend.respond(response)
    proxy.reactor.advance(0)
assert client.received().endswith(b"hello"), client.received()
"""

_COLLECTED = re.compile(rb"Collected : (\d+)")


def count_instructions(root: str, requests: int, python: str = sys.executable) -> int:
    """
    Instructions valgrind counts for C{requests} requests in C{root}.
    """
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         python, "-c", _PROGRAM, str(requests)],
        cwd=root, capture_output=True, check=True,
    )
    match = _COLLECTED.search(result.stderr)
    if match is None:
        raise RuntimeError("valgrind printed no count:\n" + result.stderr.decode(errors="replace"))
    return int(match.group(1))


def per_request(root: str, requests: int) -> int:
    """
    Instructions per request in C{root}: the difference between
    C{requests + 200} requests and 200, divided by C{requests}.
    """
    few = count_instructions(root, 200)
    many = count_instructions(root, 200 + requests)
    return (many - few) // requests


def main(argv=None) -> Dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--baseline-root", default=None)
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    figures: Dict[str, object] = {"requests": args.requests, "python": sys.version.split()[0]}
    figures["this tree"] = per_request(here, args.requests)
    if args.baseline_root:
        figures["baseline"] = per_request(os.path.abspath(args.baseline_root), args.requests)
        figures["ratio"] = round(figures["this tree"] / figures["baseline"], 4)
    print(json.dumps(figures))
    return figures


if __name__ == "__main__":
    main()
