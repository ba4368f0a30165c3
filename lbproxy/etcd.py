# -*- test-case-name: tests.test_etcd -*-
"""
C{python -m lbproxy.etcd push config.toml [--endpoint URL] [--prefix P]}:
seed etcd with a file's pools and routes, for a fleet to follow
(C{docs/fleet.md}).

The file is validated first (nothing is written for an invalid one).
Each C{[pools.NAME]} table is written to C{P/pools/NAME} and each
C{[[routes]]} table to C{P/routes/NNNN} (its position, zero-padded, so
that etcd's order is the file's), as JSON.  The endpoints and prefix are
the file's C{[etcd]} unless given.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from lbproxy.config import ConfigError, load_config
from lbproxy.config.document import tomllib

__all__ = ["main", "seed_items"]


def seed_items(data, prefix: str):
    """
    C{[(key, JSON bytes)]} for the pools and routes of parsed TOML C{data}.
    """
    items = []
    for name, table in (data.get("pools") or {}).items():
        items.append((f"{prefix}/pools/{name}", json.dumps(table, sort_keys=True)))
    for index, table in enumerate(data.get("routes") or []):
        items.append((f"{prefix}/routes/{index:04d}", json.dumps(table, sort_keys=True)))
    return [(key, value.encode("utf-8")) for key, value in items]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lbproxy.etcd")
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser("push", help="write a file's pools and routes into etcd")
    push.add_argument("config")
    push.add_argument("--endpoint", help="etcd's URL (default: the file's [etcd] endpoints)")
    push.add_argument("--prefix", help="the key prefix (default: the file's, or /lbproxy)")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as e:
        print(f"lbproxy.etcd: {e}", file=sys.stderr)
        return 1
    with open(args.config, "rb") as f:
        data = tomllib.load(f)
    endpoints = [args.endpoint] if args.endpoint else list(
        config.etcd.endpoints if config.etcd else ())
    if not endpoints:
        print("lbproxy.etcd: no [etcd] endpoints in the file; give --endpoint", file=sys.stderr)
        return 1
    prefix = (args.prefix or (config.etcd.prefix if config.etcd else "/lbproxy")).rstrip("/")
    items = seed_items(data, prefix)

    from twisted.internet import task
    from twisted.internet.defer import inlineCallbacks

    from lbproxy.app.fleet import etcd_client_tls
    from lbproxy.discovery.etcdclient import EtcdClient

    outcome = {"code": 1}

    @inlineCallbacks
    def run(reactor):
        client = EtcdClient(reactor, endpoints[0].rstrip("/"),
                            etcd_client_tls(config.etcd) if config.etcd else None)
        if config.etcd is not None and config.etcd.user:
            yield client.authenticate(config.etcd.user, config.etcd.password)
        revision = 0
        for key, value in items:
            revision = yield client.put(key, value)
            print(f"{key} ({len(value)} bytes)")
        print(f"{len(items)} keys written to {endpoints[0]}, revision {revision}")
        outcome["code"] = 0

    try:
        task.react(lambda reactor: run(reactor))
    except SystemExit as e:
        if e.code:
            return int(e.code)
    return outcome["code"]


if __name__ == "__main__":
    sys.exit(main())
