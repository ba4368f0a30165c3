# -*- test-case-name: tests.test_admin_config -*-
"""
The C{[admin]} table: the admin listener (status, the admin API and the
pages other features mount on it) and the token that guards changes.

    [admin]
    listen = "tcp:9901:interface=127.0.0.1"
    token_file = "admin.token"      # or token = "..."

The listener is off unless the table exists.  A C{tcp:} endpoint without
an C{interface=} listens on the loopback address only: exposing the admin
API takes an address written out.  One of C{token} and C{token_file} is
required; the file is read here, so an unreadable or empty one is a
configuration error like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from lbproxy.config.errors import child_key
from lbproxy.config.reader import Reader

__all__ = [
    "AdminConfig", "DEFAULT_ADMIN_LISTEN", "check_admin_listen", "loopback_only", "parse_admin",
]

_ADMIN_KEYS = ("listen", "protect_reads", "token", "token_file")
DEFAULT_ADMIN_LISTEN = "tcp:9901:interface=127.0.0.1"
#: Shorter tokens are too easy to guess.
MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class AdminConfig:
    """
    The C{[admin]} table.

    @ivar listen: the admin listener's endpoint string.
    @ivar token: the bearer token every change must carry (never shown in
        a repr or a log line).
    @ivar token_file: the file the token was read from, or L{None} when it
        is written in the configuration.
    @ivar protect_reads: reads (C{GET}) need the token too; by default
        they do not (the listener is local).
    """

    listen: str = DEFAULT_ADMIN_LISTEN
    token: str = field(default="", repr=False)
    token_file: Optional[str] = None
    protect_reads: bool = False


def loopback_only(description: str) -> str:
    """
    A C{tcp:}/C{tcp6:} endpoint string without an C{interface=} gets the
    loopback address of its family; any other string is returned as is.
    """
    parts = description.split(":")
    kind = parts[0]
    if kind not in ("tcp", "tcp6"):
        return description
    if any(part.startswith("interface=") for part in parts[1:]):
        return description
    loopback = "127.0.0.1" if kind == "tcp" else "\\:\\:1"
    return f"{description}:interface={loopback}"


def tcp_port(description: str) -> Optional[int]:
    """
    The port of a C{tcp:}/C{tcp6:} endpoint string, or L{None}.
    """
    parts = description.split(":")
    if parts[0] not in ("tcp", "tcp6"):
        return None
    for part in parts[1:]:
        text = part[5:] if part.startswith("port=") else part
        if text.isdigit():
            return int(text)
    return None


def check_admin_listen(admin: AdminConfig, used, reader: Reader) -> None:
    """
    The admin listener shares no port with another listener.

    @param used: endpoint string -> the key that names it.
    """
    port = tcp_port(admin.listen)
    for description, key in used.items():
        if description == admin.listen or (port and tcp_port(description) == port):
            raise reader.fail("admin.listen", f"port {port} already used by {key}")


def parse_admin(value: Any, key: str, reader: Reader) -> AdminConfig:
    """
    The C{[admin]} table (at C{key}).
    """
    table = reader.table(value, key, _ADMIN_KEYS)
    protect = False
    if "protect_reads" in table:
        protect = reader.boolean(table["protect_reads"], child_key(key, "protect_reads"))
    listen = DEFAULT_ADMIN_LISTEN
    if "listen" in table:
        listen = loopback_only(reader.endpoint(table["listen"], child_key(key, "listen")))
    if "token" in table and "token_file" in table:
        raise reader.fail(
            child_key(key, "token"), "give token or token_file, not both"
        )
    if "token" in table:
        token_key = child_key(key, "token")
        token = reader.nonempty_string(table["token"], token_key).strip()
        _check_token(token, token_key, reader)
        return AdminConfig(listen=listen, token=token, protect_reads=protect)
    if "token_file" in table:
        file_key = child_key(key, "token_file")
        path = reader.file(table["token_file"], file_key)
        token = _read_token(path, file_key, reader)
        return AdminConfig(listen=listen, token=token, token_file=path, protect_reads=protect)
    raise reader.fail(
        child_key(key, "token_file"),
        "required key is missing: the admin API needs a token (token_file or token)",
    )


def _read_token(path: str, key: str, reader: Reader) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except FileNotFoundError:
        raise reader.fail(key, f"file not found: {path}") from None
    except OSError as e:
        raise reader.fail(key, f"cannot read {path}: {e.strerror or e}") from None
    try:
        token = raw.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise reader.fail(key, f"{path} is not UTF-8 text") from None
    _check_token(token, key, reader)
    return token


def _check_token(token: str, key: str, reader: Reader) -> None:
    if len(token) < MIN_TOKEN_LENGTH:
        raise reader.fail(
            key, f"the token must be at least {MIN_TOKEN_LENGTH} characters long"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise reader.fail(key, "the token must be printable, without spaces")
