# -*- test-case-name: tests.test_bench -*-
"""
Configuration files of the servers in a benchmark run.

Pure: ports and paths in, file text out.  Every server listens on
127.0.0.1 only, keeps its pid file, logs and temporary files in the run's
own directory, and runs in the foreground as the current user.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Optional

from bench.plan import SMALL_BODY

__all__ = [
    "TLSFiles",
    "haproxy_config",
    "lbproxy_config",
    "nginx_backend_config",
    "nginx_proxy_config",
    "stock_proxy_command",
]

#: Keep-alive requests per connection for nginx (its default, 1000, would
#: make wrk reconnect, and renegotiate TLS, during a run).
KEEPALIVE_REQUESTS = 1000000


@dataclass(frozen=True)
class TLSFiles:
    """
    The self-signed certificate every server presents.

    @ivar cert: PEM certificate.
    @ivar key: PEM private key.
    @ivar combined: Certificate and key in one file (HAProxy's C{crt}).
    """

    cert: str
    key: str
    combined: str


def _nginx_common(directory: str, name: str, user: Optional[str]) -> List[str]:
    lines = []
    if user:
        # Only meaningful (and only allowed) when nginx starts as root:
        # keep its worker as the same user instead of "nobody".
        lines.append(f"user {user};")
    lines += [
        "worker_processes 1;",
        f"pid {directory}/{name}.pid;",
        f"error_log {directory}/{name}-error.log warn;",
        "events { worker_connections 8192; }",
    ]
    return lines


def _nginx_http_common(directory: str, name: str) -> List[str]:
    temp = f"{directory}/{name}-temp"
    return [
        "    access_log off;",
        "    sendfile on;",
        "    tcp_nopush on;",
        f"    keepalive_requests {KEEPALIVE_REQUESTS};",
        f"    client_body_temp_path {temp}/body;",
        f"    proxy_temp_path {temp}/proxy;",
        f"    fastcgi_temp_path {temp}/fastcgi;",
        f"    uwsgi_temp_path {temp}/uwsgi;",
        f"    scgi_temp_path {temp}/scgi;",
    ]


def _listens(port: int, tls_port: Optional[int], tls: Optional[TLSFiles]) -> List[str]:
    lines = [f"        listen 127.0.0.1:{port};"]
    if tls_port is not None and tls is not None:
        lines += [
            f"        listen 127.0.0.1:{tls_port} ssl;",
            # nginx 1.22 leaves TLS 1.3 out of its default protocols.
            "        ssl_protocols TLSv1.2 TLSv1.3;",
            f"        ssl_certificate {tls.cert};",
            f"        ssl_certificate_key {tls.key};",
        ]
    return lines


def nginx_backend_config(
    directory: str,
    port: int,
    www: str,
    tls_port: Optional[int] = None,
    tls: Optional[TLSFiles] = None,
    user: Optional[str] = None,
) -> str:
    """
    The backend: C{/small} answers the 13-byte body from memory, other
    paths are files under C{www} (the 1 MiB file is C{/1m}).

    @param directory: Where the pid file, error log and temporary files go.
    @param user: The C{user} directive's value, for a root master only.
    """
    body = SMALL_BODY.decode("ascii")
    lines = _nginx_common(directory, "backend", user)
    lines += ["http {"] + _nginx_http_common(directory, "backend")
    lines += ["    server {"] + _listens(port, tls_port, tls)
    lines += [
        f"        root {www};",
        "        default_type application/octet-stream;",
        f'        location = /small {{ default_type text/plain; return 200 "{body}"; }}',
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def nginx_proxy_config(
    directory: str,
    port: int,
    backend_port: int,
    tls_port: Optional[int] = None,
    tls: Optional[TLSFiles] = None,
    user: Optional[str] = None,
) -> str:
    """
    nginx as a reverse proxy, with keep-alive connections to the backend
    and the same C{X-Forwarded-*} headers lbproxy adds.  Responses are
    buffered in memory only (C{proxy_max_temp_file_size 0}), never on
    disk.
    """
    lines = _nginx_common(directory, "nginx-proxy", user)
    lines += ["http {"] + _nginx_http_common(directory, "nginx-proxy")
    lines += [
        "    upstream backend {",
        f"        server 127.0.0.1:{backend_port};",
        "        keepalive 64;",
        f"        keepalive_requests {KEEPALIVE_REQUESTS};",
        "    }",
        "    server {",
    ]
    lines += _listens(port, tls_port, tls)
    lines += [
        "        location / {",
        "            proxy_pass http://backend;",
        "            proxy_http_version 1.1;",
        '            proxy_set_header Connection "";',
        "            proxy_set_header Host $http_host;",
        "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "            proxy_set_header X-Forwarded-Proto $scheme;",
        "            proxy_set_header X-Forwarded-Host $http_host;",
        "            proxy_max_temp_file_size 0;",
        "        }",
        "    }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def haproxy_config(
    port: int,
    backend_port: int,
    tls_port: Optional[int] = None,
    tls: Optional[TLSFiles] = None,
) -> str:
    """
    HAProxy in HTTP mode with one thread, keep-alive to the backend
    (C{http-reuse always}) and the same C{X-Forwarded-*} headers.  It
    logs nothing and is run with C{-db} (foreground).
    """
    lines = [
        "global",
        "    nbthread 1",
        "    maxconn 4096",
        "    tune.ssl.default-dh-param 2048",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 5s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 60s",
        "    option forwardfor",
        "    http-reuse always",
        "",
        "frontend bench",
        f"    bind 127.0.0.1:{port}",
    ]
    if tls_port is not None and tls is not None:
        lines.append(f"    bind 127.0.0.1:{tls_port} ssl crt {tls.combined}")
    lines += [
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    http-request set-header X-Forwarded-Host %[req.hdr(host)]",
        "    default_backend backend",
        "",
        "backend backend",
        f"    server b1 127.0.0.1:{backend_port}",
    ]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    # JSON string syntax is valid TOML basic-string syntax for these paths.
    return json.dumps(text)


def lbproxy_config(
    port: int,
    backend_port: int,
    access_log: Optional[str] = None,
    tls_port: Optional[int] = None,
    tls: Optional[TLSFiles] = None,
    workers: Optional[int] = None,
) -> str:
    """
    lbproxy with one pool (the backend) as C{default_pool} and no routes.

    @param access_log: A file for the access log, or L{None} for
        C{access_log = false}.
    @param tls_port: With C{tls}, adds a C{[tls]} table listening there
        (the C{[tls]} section of the TLS work: C{listen} and
        C{[[tls.certificates]]} with C{cert} and C{key}).
    @param workers: C{server.workers}, or L{None} to leave it out.
    """
    lines = [
        "[server]",
        f'listen = "tcp:{port}:interface=127.0.0.1"',
        "access_log = %s" % (_toml_string(access_log) if access_log else "false"),
        'default_pool = "backend"',
    ]
    if workers is not None:
        lines.append(f"workers = {int(workers)}")
    lines += [
        "",
        "[pools.backend]",
        f'targets = ["127.0.0.1:{backend_port}"]',
    ]
    if tls_port is not None and tls is not None:
        lines += [
            "",
            "[tls]",
            f'listen = ["tcp:{tls_port}:interface=127.0.0.1"]',
            "",
            "[[tls.certificates]]",
            f"cert = {_toml_string(tls.cert)}",
            f"key = {_toml_string(tls.key)}",
        ]
    return "\n".join(lines) + "\n"


def stock_proxy_command(
    python: str,
    script: str,
    port: int,
    backend_port: int,
    tls_port: Optional[int] = None,
    tls: Optional[TLSFiles] = None,
) -> List[str]:
    """
    The command running C{bench/stock_proxy.py} (Twisted's
    C{ReverseProxyResource}) under C{python}.
    """
    command = [python, script, "--backend-port", str(backend_port)]
    command += ["--listen", f"tcp:{port}:interface=127.0.0.1"]
    if tls_port is not None and tls is not None:
        command += [
            "--listen",
            f"ssl:{tls_port}:interface=127.0.0.1:privateKey={tls.key}:certKey={tls.cert}",
        ]
    return command
