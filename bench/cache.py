# -*- test-case-name: tests.test_bench_cache -*-
"""
The cache and compression benchmark (docs/caching.md, "Measured"):

  - C{hits}: requests per second of cache hits and of misses through
    lbproxy, and through nginx with C{proxy_cache} on the same content from
    the same nginx backend, in one run (wrk, keep-alive);
  - C{coalesce}: 1,000 concurrent requests for one cold key through
    lbproxy (and another through nginx with C{proxy_cache_lock}), and how
    many requests the backend got (a count, not a time);
  - C{compress}: compression ratio and throughput of a 1 MiB HTML and a
    1 MiB JSON body, gzip and brotli, in process with lbproxy's encoders
    (64 KiB pieces, each flushed as the stage does) and through the proxy
    (wrk with C{Accept-Encoding}).

Run: C{.venv/bin/python -m bench.cache [--only hits|coalesce|compress]}
(C{--help} for the rest).  Every server runs on 127.0.0.1 from a temporary
directory and is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Dict, List, Optional

from bench.cache_backend import html_body, json_body
from bench.harness import Processes, free_ports, wait_for_port
from bench.servers import KEEPALIVE_REQUESTS, _nginx_common, _nginx_http_common
from bench.subjects import _nginx_user, twistd
from bench.wrk import parse_wrk, wrk_command

__all__ = ["lbproxy_cache_config", "main", "nginx_cache_backend_config",
           "nginx_cache_proxy_config"]

#: The page every hit and miss measurement fetches.
PAGE_SIZE = 16 * 1024
MIB = 1024 * 1024


def nginx_cache_backend_config(directory: str, port: int, www: str,
                               user: Optional[str] = None) -> str:
    """
    nginx serving the same files under C{/hit/} (C{max-age=3600}: stored
    by a cache) and C{/miss/} (C{no-store}: every request goes through).
    """
    lines = _nginx_common(directory, "cache-backend", user)
    lines += ["http {"] + _nginx_http_common(directory, "cache-backend")
    lines += [
        "    server {",
        f"        listen 127.0.0.1:{port};",
        "        default_type text/html;",
        f'        location /hit/ {{ alias {www}/; add_header Cache-Control "max-age=3600"; }}',
        f'        location /miss/ {{ alias {www}/; add_header Cache-Control "no-store"; }}',
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nginx_cache_proxy_config(directory: str, port: int, backend_port: int,
                             user: Optional[str] = None) -> str:
    """
    nginx as a caching reverse proxy (C{proxy_cache}, C{proxy_cache_lock}
    for coalescing), keep-alive to the backend, C{X-Cache} from
    C{$upstream_cache_status}.
    """
    lines = _nginx_common(directory, "nginx-cache", user)
    lines += ["http {"] + _nginx_http_common(directory, "nginx-cache")
    lines += [
        f"    proxy_cache_path {directory}/nginx-cache-store levels=1:2 keys_zone=edge:16m "
        "max_size=256m inactive=60m use_temp_path=off;",
        "    upstream backend {",
        f"        server 127.0.0.1:{backend_port};",
        "        keepalive 64;",
        f"        keepalive_requests {KEEPALIVE_REQUESTS};",
        "    }",
        "    server {",
        f"        listen 127.0.0.1:{port};",
        "        location / {",
        "            proxy_pass http://backend;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $http_host;",
        "            proxy_cache edge;",
        "            proxy_cache_lock on;",
        "            add_header X-Cache $upstream_cache_status;",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def lbproxy_cache_config(port: int, backend_port: int, slow_port: Optional[int] = None) -> str:
    """
    lbproxy with the cache on every path of the nginx backend, compression
    on C{/z/} of the Python backend (C{slow_port}), no access log.
    """
    text = f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
access_log = false
request_id_header = false
listen_backlog = 2048

[cache]
max_bytes = "256MiB"
max_object = "8MiB"

[pools.nginx]
targets = ["127.0.0.1:{backend_port}"]

[[routes]]
path = "/"
pool = "nginx"
cache = true
"""
    if slow_port is not None:
        text += f"""
[pools.py]
targets = ["127.0.0.1:{slow_port}"]

[[routes]]
path = "/c"
pool = "py"
cache = true

[[routes]]
path = "/z"
pool = "py"
strip_prefix = true
compress = true
"""
    return text


def _write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def _wrk(args, url: str, headers=()) -> Dict[str, float]:
    command = wrk_command(url, args.duration, args.connections, 1, wrk=args.wrk)
    for header in headers:
        command[1:1] = ["-H", header]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = parse_wrk(output)
    return {
        "requests_per_sec": result.requests_per_sec,
        "mib_per_sec": result.bytes_per_sec / MIB,
        "p99_ms": (result.percentile(99.0) or 0.0) * 1000,
        "errors": result.socket_errors + result.non_2xx + result.timeouts,
    }


def _header(port: int, path: str, name: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        response.read()
        return response.headers.get(name, "")


def measure_hits(args, processes: Processes, temp: str) -> Dict[str, dict]:
    www = os.path.join(temp, "www")
    os.makedirs(www, exist_ok=True)
    with open(os.path.join(www, "page.html"), "wb") as f:
        f.write(html_body(PAGE_SIZE))
    backend, nginx_port, lb_port = free_ports(3)
    user = _nginx_user()
    for name, text in (("cache-backend", nginx_cache_backend_config(temp, backend, www, user)),
                       ("nginx-cache", nginx_cache_proxy_config(temp, nginx_port, backend, user))):
        os.makedirs(os.path.join(temp, f"{name}-temp"), exist_ok=True)
        path = _write(temp, f"{name}.conf", text)
        started = processes.start(name, [args.nginx, "-p", temp, "-e", os.path.join(temp, f"{name}-error.log"),
                                          "-c", path, "-g", "daemon off;"])
        wait_for_port(started, backend if name == "cache-backend" else nginx_port, 20)
    config = _write(temp, "lbproxy.toml", lbproxy_cache_config(lb_port, backend))
    started = processes.start("lbproxy", twistd(args.python) + ["-n", "--pidfile=", "lbproxy",
                                                                 "--config", config])
    wait_for_port(started, lb_port, 30)
    results = {}
    for subject, port in (("lbproxy", lb_port), ("nginx proxy_cache", nginx_port)):
        for kind in ("hit", "miss"):
            path = f"/{kind}/page.html"
            for _ in range(2):  # warm: the first request stores
                label = _header(port, path, "X-Cache")
            results[f"{subject} {kind}"] = dict(_wrk(args, f"http://127.0.0.1:{port}{path}"),
                                                x_cache=label)
    results["backend direct"] = _wrk(args, f"http://127.0.0.1:{backend}/miss/page.html")
    return results


async def _coalesced_requests(port: int, path: str, count: int) -> List[bytes]:
    async def one() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        return data

    return await asyncio.gather(*(one() for _ in range(count)))


def _body(raw: bytes) -> bytes:
    """
    A response's body, its chunked framing (if any) removed.
    """
    head, _, rest = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return rest
    body = b""
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            break
        body += rest[:n]
        rest = rest[n + 2:]
    return body


def measure_coalesce(args, processes: Processes, temp: str) -> dict:
    """
    1,000 concurrent requests for one cold key (the backend answers after
    2 s) through lbproxy, then for another cold key through nginx with
    C{proxy_cache_lock on}: how many requests reached the backend.
    """
    backend, lb_port, other, nginx_port = free_ports(4)
    started = processes.start("cache-backend-py", [args.python, "-m", "bench.cache_backend",
                                                   "--port", str(backend)])
    wait_for_port(started, backend, 20)
    config = _write(temp, "lbproxy-coalesce.toml", lbproxy_cache_config(lb_port, other, backend))
    started = processes.start("lbproxy-coalesce", twistd(args.python) + [
        "-n", "--pidfile=", "lbproxy", "--config", config])
    wait_for_port(started, lb_port, 30)
    subjects = [("lbproxy", lb_port, "/c/cold-lbproxy")]
    if args.nginx:
        name = "nginx-coalesce"
        os.makedirs(os.path.join(temp, f"{name}-temp"), exist_ok=True)
        path = _write(temp, f"{name}.conf", nginx_cache_proxy_config(
            temp, nginx_port, backend, _nginx_user()).replace("nginx-cache", name))
        started = processes.start(name, [args.nginx, "-p", temp, "-e",
                                         os.path.join(temp, f"{name}-error.log"),
                                         "-c", path, "-g", "daemon off;"])
        wait_for_port(started, nginx_port, 20)
        subjects.append(("nginx proxy_cache_lock", nginx_port, "/c/cold-nginx"))
    expected = html_body(20000)
    results = {}
    for subject, port, path in subjects:
        began = time.monotonic()
        responses = asyncio.run(_coalesced_requests(port, path + "?size=20000&delay=2",
                                                    args.concurrent))
        elapsed = time.monotonic() - began
        with urllib.request.urlopen(f"http://127.0.0.1:{backend}/count", timeout=10) as r:
            counts = json.loads(r.read())
        results[subject] = {
            "concurrent": args.concurrent, "backend_requests": counts.get(path, 0),
            "byte_exact_responses": sum(1 for r in responses if _body(r) == expected),
            "seconds": round(elapsed, 2),
        }
    return results


def _codec(coding: bytes, body: bytes, rounds: int) -> dict:
    from lbproxy.wire.codecs import new_encoder

    piece = 64 * 1024
    began = time.perf_counter()
    for _ in range(rounds):
        encoder = new_encoder(coding)
        size = 0
        for start in range(0, len(body), piece):
            size += len(encoder.encode(body[start:start + piece]))
        size += len(encoder.finish())
    seconds = (time.perf_counter() - began) / rounds
    return {"ratio": round(len(body) / size, 2), "compressed_bytes": size,
            "mib_per_sec": round(len(body) / MIB / seconds, 1)}


def measure_compress(args, processes: Processes, temp: str) -> dict:
    bodies = {"html": html_body(MIB), "json": json_body(MIB)}
    results: dict = {}
    for name, body in bodies.items():
        for coding in (b"gzip", b"br"):
            results[f"{name} {coding.decode()} (in process)"] = _codec(coding, body, args.rounds)
    backend, lb_port, other = free_ports(3)
    started = processes.start("compress-backend", [args.python, "-m", "bench.cache_backend",
                                                   "--port", str(backend)])
    wait_for_port(started, backend, 20)
    config = _write(temp, "lbproxy-compress.toml", lbproxy_cache_config(lb_port, other, backend))
    started = processes.start("lbproxy-compress", twistd(args.python) + [
        "-n", "--pidfile=", "lbproxy", "--config", config])
    wait_for_port(started, lb_port, 30)
    for coding in ("identity", "gzip", "br"):
        url = f"http://127.0.0.1:{lb_port}/z/json?size={MIB}"
        results[f"json 1 MiB via lbproxy, {coding}"] = _wrk(
            args, url, [f"Accept-Encoding: {coding}"])
    return results


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("hits", "coalesce", "compress"), action="append")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--concurrent", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="codec rounds per body")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--wrk", default="wrk")
    parser.add_argument("--out", help="write the results as JSON here too")
    args = parser.parse_args(argv)
    parts = args.only or ["hits", "coalesce", "compress"]
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="lbproxy-cache-bench-") as temp:
        processes = Processes(temp)
        try:
            for part, measure in (("hits", measure_hits), ("coalesce", measure_coalesce),
                                  ("compress", measure_compress)):
                if part in parts:
                    results[part] = measure(args, processes, temp)
                    print(json.dumps({part: results[part]}, indent=2), flush=True)
        finally:
            processes.stop_all()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
