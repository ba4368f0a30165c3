# -*- test-case-name: tests.test_bench -*-
"""
Other clients' latency while one client floods lbproxy over HTTP/2 and
reconnects after every C{GOAWAY} (a "reconnecting" rapid reset).

Starts C{twistd -n lbproxy} with a TLS listener (a self-signed
certificate) and one demo backend, measures a victim's request latency
(sequential HTTPS requests on one kept-alive connection) without an
attack, then while an attacker process floods, once with
C{[server.http2] penalty = 0} (the attacker may reconnect at once) and
once with the default penalty.  Everything on 127.0.0.1 (the attacker connects from 127.0.0.2: refusals
are by address), bounded in time;
every process started is stopped by PID.

    python -m bench.h2flood [--seconds 10]

Prints one line per phase: requests, p50, p99 and max latency, and the
attacker's connections and resets sent.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

from bench.harness import free_ports, port_is_open

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_CONFIG = """
[server]
listen = "tcp:{plain}:interface=127.0.0.1"
access_log = false

[server.http2]
penalty = {penalty}

[pools.web]
targets = ["127.0.0.1:{backend}"]

[[routes]]
pool = "web"

[tls]
listen = "tcp:{tls}:interface=127.0.0.1"
alpn = ["h2", "http/1.1"]

[[tls.certificates]]
cert = "{directory}/cert.pem"
key = "{directory}/key.pem"
self_signed = ["localhost", "127.0.0.1"]

[[demo]]
name = "web"
listen = "tcp:{backend}:interface=127.0.0.1"
text = "hello"
"""


def _start_proxy(directory: str, penalty: float) -> Tuple[subprocess.Popen, int]:
    plain, tls, backend = free_ports(3)
    path = os.path.join(directory, "lbproxy-%g.toml" % (penalty,))
    with open(path, "w") as f:
        f.write(_CONFIG.format(
            plain=plain, tls=tls, backend=backend, penalty=penalty, directory=directory
        ))
    process = subprocess.Popen(
        [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
         "-n", "--pidfile=", "lbproxy", "--config", path],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=_ROOT,
    )
    deadline = time.monotonic() + 20
    while not (port_is_open(tls) and port_is_open(backend)):
        if time.monotonic() > deadline or process.poll() is not None:
            _stop(process)
            raise SystemExit("lbproxy did not start (%s)" % (path,))
        time.sleep(0.05)
    return process, tls


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _client_context(alpn: List[str]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(alpn)
    return context


def attack(port: int, seconds: float) -> None:
    """
    Flood: connect with HTTP/2, rounds of 100 HEADERS and 100 RST_STREAM
    until the connection closes, reconnect at once; for C{seconds}.
    Prints C{connections resets}.
    """
    import h2.config
    import h2.connection
    import h2.events

    context = _client_context(["h2"])
    end = time.monotonic() + seconds
    connections = resets = 0
    headers = [
        (":method", "GET"), (":path", "/"), (":authority", "localhost"), (":scheme", "https")
    ]
    while time.monotonic() < end:
        try:
            # From another loopback address than the victim's: refusals
            # are by address.
            raw = socket.create_connection(
                ("127.0.0.1", port), timeout=2, source_address=("127.0.0.2", 0)
            )
            sock = context.wrap_socket(raw, server_hostname="localhost")
        except (OSError, ssl.SSLError):
            connections += 1
            continue
        connections += 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        try:
            sock.sendall(conn.data_to_send())
            sock.setblocking(False)
            while time.monotonic() < end:
                for _ in range(100):
                    stream = conn.get_next_available_stream_id()
                    conn.send_headers(stream, headers, end_stream=True)
                    conn.reset_stream(stream)
                    resets += 1
                sock.setblocking(True)
                sock.sendall(conn.data_to_send())
                sock.setblocking(False)
                # Reconnect as soon as the server says GOAWAY or closes.
                try:
                    data = sock.recv(65536)
                except (ssl.SSLWantReadError, BlockingIOError):
                    continue
                if not data or any(
                    isinstance(event, h2.events.ConnectionTerminated)
                    for event in conn.receive_data(data)
                ):
                    break
        except Exception:
            pass
        finally:
            sock.close()
    print(connections, resets)


def _victim(port: int, seconds: float) -> List[float]:
    context = _client_context(["http/1.1"])
    latencies: List[float] = []
    end = time.monotonic() + seconds
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
    while time.monotonic() < end:
        start = time.monotonic()
        try:
            conn.request("GET", "/", headers={"Host": "localhost"})
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=10)
            continue
        latencies.append(time.monotonic() - start)
    conn.close()
    return latencies


def _summary(latencies: List[float]) -> str:
    if not latencies:
        return "no requests completed"
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return "%6d requests  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms" % (
        len(ordered), at(0.5), at(0.99), ordered[-1] * 1000
    )


def _phase(directory: str, penalty: float, seconds: float, flood: bool) -> str:
    process, port = _start_proxy(directory, penalty)
    attacker = None
    try:
        if flood:
            attacker = subprocess.Popen(
                [sys.executable, "-m", "bench.h2flood", "--attack", str(port),
                 "--seconds", str(seconds)],
                stdout=subprocess.PIPE,
                text=True,
            )
            time.sleep(0.5)
        latencies = _victim(port, seconds - 1 if flood else seconds)
        extra = ""
        if attacker is not None:
            out, _ = attacker.communicate(timeout=seconds + 30)
            connections, resets = out.split()
            extra = "  (attacker: %s connections, %s resets)" % (connections, resets)
        return _summary(latencies) + extra
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
            attacker.wait()
        _stop(process)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--attack", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.attack:
        attack(args.attack, args.seconds)
        return
    with tempfile.TemporaryDirectory() as directory:
        print("no attack             ", _phase(directory, 10, args.seconds, False))
        print("flood, penalty = 0    ", _phase(directory, 0, args.seconds, True))
        print("flood, penalty = 10 s ", _phase(directory, 10, args.seconds, True))


if __name__ == "__main__":
    main()
