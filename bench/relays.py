"""
Relays measured on loopback against direct connections (not a test):

  1. TCP relay throughput through a C{[[tcp]]} service vs direct, MB/s,
     with 1 and with N concurrent streams (a backend sends each stream
     MIB MiB; the client reads to the end);
  2. RSS per idle relayed TCP connection (N idle connections through the
     service, lbproxy's RSS before and after);
  3. WebSocket: M echoed messages one after the other through lbproxy vs
     direct (the C{websockets} package at both ends), messages per
     second;
  4. RSS per idle WebSocket (N WebSockets held open through lbproxy).

Usage (from the repository root, in the virtualenv with the test extras,
on a quiet machine)::

    .venv/bin/python -m bench.relays [--streams 50] [--mib 256] [--messages 10000]
        [--idle 1000] [--json results.json]

It starts the backends (L{bench.relayservers}) and lbproxy on free
127.0.0.1 ports, stops them by PID at the end, and prints one JSON object
with the figures (docs/protocols.md explains them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.memory import free_port, rss_kib, wait_port

CONFIG = """
[server]
listen = "tcp:{http}:interface=127.0.0.1"
access_log = false
max_connections = 100000
websocket_idle_timeout = 3600

[pools.ws]
targets = ["127.0.0.1:{ws}"]

[pools.blast]
targets = ["127.0.0.1:{blast}"]

[pools.echo]
targets = ["127.0.0.1:{echo}"]

[[routes]]
path = "/"
pool = "ws"

[[tcp]]
listen = "tcp:{tcpBlast}:interface=127.0.0.1"
pool = "blast"

[[tcp]]
listen = "tcp:{tcpEcho}:interface=127.0.0.1"
pool = "echo"
"""


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def _read_all(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    total = 0
    while True:
        data = await reader.read(1 << 20)
        if not data:
            break
        total += len(data)
    writer.close()
    return total


def throughput(port: int, streams: int) -> float:
    """
    MB/s (10**6 bytes) of C{streams} concurrent reads to the end.
    """

    async def run():
        started = time.perf_counter()
        sizes = await asyncio.gather(*[_read_all(port) for _ in range(streams)])
        return sum(sizes) / (time.perf_counter() - started) / 1e6

    return asyncio.run(run())


def idle_tcp(port: int, count: int, pid: int) -> float:
    """
    KiB of lbproxy's RSS per idle relayed TCP connection.
    """

    async def run():
        before = rss_kib(pid)
        connections = []
        for _ in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x")
            await reader.readexactly(1)
            connections.append(writer)
        await asyncio.sleep(1)
        after = rss_kib(pid)
        for writer in connections:
            writer.close()
        return (after - before) / count

    return asyncio.run(run())


def websocket_rate(url: str, messages: int) -> float:
    from websockets.sync.client import connect

    payload = "x" * 64
    with connect(url, max_size=None) as ws:
        for _ in range(100):
            ws.send(payload)
            ws.recv()
        started = time.perf_counter()
        for _ in range(messages):
            ws.send(payload)
            ws.recv()
        return messages / (time.perf_counter() - started)


def idle_websockets(url: str, count: int, pid: int) -> float:
    from websockets.asyncio.client import connect

    async def run():
        before = rss_kib(pid)
        sockets = []
        for _ in range(count):
            ws = await connect(url)
            await ws.send("hello")
            await ws.recv()
            sockets.append(ws)
        await asyncio.sleep(1)
        after = rss_kib(pid)
        for ws in sockets:
            await ws.close()
        return (after - before) / count

    return asyncio.run(run())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.relays")
    parser.add_argument("--streams", type=int, default=50, help="concurrent streams")
    parser.add_argument("--mib", type=int, default=256, help="MiB per stream")
    parser.add_argument("--messages", type=int, default=10000, help="WebSocket messages")
    parser.add_argument("--idle", type=int, default=1000, help="idle connections")
    parser.add_argument("--json", help="also write the figures to this file")
    options = parser.parse_args(argv)
    _raise_fd_limit()
    ports = {name: free_port() for name in ("http", "ws", "blast", "echo", "tcpBlast", "tcpEcho")}
    processes = []
    workdir = Path(tempfile.mkdtemp(prefix="lbproxy-relays-"))
    try:
        servers = [sys.executable, "-m", "bench.relayservers"]
        for argv_ in (
            ["ws", str(ports["ws"])],
            ["blast", str(ports["blast"]), str(options.mib)],
            ["echo", str(ports["echo"])],
        ):
            processes.append(subprocess.Popen(servers + argv_, stdout=subprocess.DEVNULL))
        config = workdir / "lbproxy.toml"
        config.write_text(CONFIG.format(**ports))
        proxy = subprocess.Popen(
            [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
             "-n", "--pidfile=", "lbproxy", "--config", str(config)],
            cwd=str(workdir), stdout=subprocess.DEVNULL,
        )
        processes.append(proxy)
        deadline = time.monotonic() + 30
        for port in ports.values():
            wait_port(port, deadline)
        results = {"python": sys.version.split()[0], "implementation": sys.implementation.name}
        for streams in (1, options.streams):
            direct = throughput(ports["blast"], streams)
            relayed = throughput(ports["tcpBlast"], streams)
            results[f"tcp_{streams}_streams_MBps"] = {
                "direct": round(direct, 1), "lbproxy": round(relayed, 1),
                "ratio": round(relayed / direct, 3),
            }
        results["tcp_idle_rss_kib_per_connection"] = round(
            idle_tcp(ports["tcpEcho"], options.idle, proxy.pid), 2
        )
        direct = websocket_rate(f"ws://127.0.0.1:{ports['ws']}/", options.messages)
        relayed = websocket_rate(f"ws://127.0.0.1:{ports['http']}/", options.messages)
        results["websocket_echo_msgs_per_s"] = {
            "direct": round(direct), "lbproxy": round(relayed), "ratio": round(relayed / direct, 3),
        }
        results["websocket_idle_rss_kib_per_connection"] = round(
            idle_websockets(f"ws://127.0.0.1:{ports['http']}/", options.idle, proxy.pid), 2
        )
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    text = json.dumps(results, indent=2)
    print(text)
    if options.json:
        Path(options.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
