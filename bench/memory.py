"""
Memory and scale of lbproxy, measured on loopback (not a test):

  1. RSS per idle keep-alive client connection: N connections each make
     one request and stay open; RSS before and after.
  2. Leak check: a load run of D seconds with wrk, RSS sampled every S
     seconds; the growth after the warm-up is reported.

Usage (from the repository root, with nginx and wrk installed)::

    .venv/bin/python -m bench.memory [--idle 10000] [--duration 300] [--every 30]

It starts an nginx backend and lbproxy on free 127.0.0.1 ports, stops
both by PID at the end, and prints one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def wait_port(port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("--idle", type=int, default=10000, help="idle connections")
    parser.add_argument("--duration", type=float, default=300.0, help="load seconds")
    parser.add_argument("--every", type=float, default=30.0, help="RSS sample interval")
    parser.add_argument("--connections", type=int, default=50, help="wrk connections")
    args = parser.parse_args(argv)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="lbproxy-memory-"))
    backend, proxy = free_port(), free_port()
    (work / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx.err;
daemon off;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work};
  proxy_temp_path {work};
  fastcgi_temp_path {work};
  uwsgi_temp_path {work};
  scgi_temp_path {work};
  server {{ listen 127.0.0.1:{backend}; location / {{ return 200 "Hello, world!"; }} }}
}}
"""
    )
    (work / "lbproxy.toml").write_text(
        f"""
[server]
listen = "tcp:{proxy}:interface=127.0.0.1"
access_log = false
default_pool = "b"
keepalive_timeout = 600.0
max_connections = {args.idle + 1000}

[pools.b]
targets = ["127.0.0.1:{backend}"]
"""
    )
    twistd = str(Path(sys.executable).with_name("twistd"))
    processes = []
    try:
        processes.append(subprocess.Popen(["nginx", "-c", str(work / "nginx.conf")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        processes.append(subprocess.Popen(
            [twistd, "-n", "--pidfile=", "lbproxy", "--config", str(work / "lbproxy.toml")],
            stdout=open(work / "lbproxy.log", "wb"), stderr=subprocess.STDOUT, cwd=work))
        deadline = time.monotonic() + 20
        wait_port(backend, deadline)
        wait_port(proxy, deadline)
        pid = processes[1].pid
        request = b"GET / HTTP/1.1\r\nHost: m\r\n\r\n"
        # Warm up: one request on a connection, so code paths are loaded.
        with socket.create_connection(("127.0.0.1", proxy)) as s:
            s.sendall(request)
            s.recv(4096)
        before = rss_kib(pid)
        idle = []
        # In batches, so the backend never sees thousands of requests at
        # once: each connection makes one request, reads the answer, and
        # stays open (idle keep-alive).
        while len(idle) < args.idle:
            batch = [
                socket.create_connection(("127.0.0.1", proxy), timeout=10)
                for _ in range(min(100, args.idle - len(idle)))
            ]
            for s in batch:
                s.sendall(request)
            for s in batch:
                s.recv(4096)
            idle.extend(batch)
        time.sleep(1)
        held = rss_kib(pid)
        result = {
            "idle_connections": args.idle,
            "rss_before_kib": before,
            "rss_with_idle_kib": held,
            "rss_per_idle_connection_bytes": round((held - before) * 1024 / max(args.idle, 1)),
        }
        for s in idle:
            s.close()
        idle = []
        time.sleep(2)
        samples = []
        wrk = subprocess.Popen(
            ["wrk", "-t1", f"-c{args.connections}", f"-d{int(args.duration)}s",
             f"http://127.0.0.1:{proxy}/"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started = time.monotonic()
        while wrk.poll() is None and time.monotonic() - started < args.duration + 30:
            samples.append((round(time.monotonic() - started), rss_kib(pid)))
            time.sleep(args.every)
        output = wrk.communicate(timeout=60)[0].decode()
        samples.append((round(time.monotonic() - started), rss_kib(pid)))
        rps = [line for line in output.splitlines() if "Requests/sec" in line]
        warm = [kib for t, kib in samples if t >= args.every] or [samples[-1][1]]
        result.update({
            "load_seconds": args.duration,
            "load_requests_per_second": float(rps[0].split()[-1]) if rps else None,
            "rss_samples_kib": samples,
            "rss_growth_after_warmup_kib": warm[-1] - warm[0],
        })
        print(json.dumps(result, indent=2))
        return 0
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
