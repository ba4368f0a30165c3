# -*- test-case-name: tests.e2e.test_fleet_e2e -*-
"""
A minimal deployment agent for lbproxy's discovery feed (docs/fleet.md),
for the fleet benchmark and end-to-end tests, and as an example::

    python -m bench.feedagent --listen 7000 --control 7001 [--targets '["127.0.0.1:8081"]']

Every WebSocket client (C{ws://127.0.0.1:7000/}) gets the current target
list when it connects and each new one after.  C{PUT /targets} on the
control port with a JSON body sets a new list (sent as is, valid or
not, so malformed messages can be tested too).
"""

from __future__ import annotations

import argparse
import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site


class Agent(WebSocketServerProtocol):
    def onOpen(self) -> None:
        self.factory.clients.add(self)
        if self.factory.current is not None:
            self.sendMessage(self.factory.current)

    def onClose(self, wasClean, code, reason) -> None:
        self.factory.clients.discard(self)


class Control(Resource):
    isLeaf = True

    def __init__(self, feed) -> None:
        Resource.__init__(self)
        self.feed = feed

    def render_PUT(self, request) -> bytes:
        self.feed.current = request.content.read()
        for client in list(self.feed.clients):
            client.sendMessage(self.feed.current)
        return b"%d clients\n" % (len(self.feed.clients),)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.feedagent")
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--control", type=int, required=True)
    parser.add_argument("--targets", default=None)
    args = parser.parse_args(argv)
    feed = WebSocketServerFactory(f"ws://127.0.0.1:{args.listen}")
    feed.protocol = Agent
    feed.clients = set()
    feed.current = args.targets.encode() if args.targets else None
    reactor.listenTCP(args.listen, feed, interface="127.0.0.1")
    reactor.listenTCP(args.control, Site(Control(feed)), interface="127.0.0.1")
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
