# -*- test-case-name: tests.test_config -*-
"""
The C{[server.http2]} table: bounds per HTTP/2 client connection against
frame floods (rapid reset, control-frame floods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lbproxy.config.errors import child_key
from lbproxy.config.reader import Reader

__all__ = ["Http2Config", "parse_http2"]

_KEYS = ("max_resets", "max_control_frames", "interval")


@dataclass(frozen=True)
class Http2Config:
    """
    Bounds per HTTP/2 connection; past one, the client gets
    C{GOAWAY(ENHANCE_YOUR_CALM)} and the connection closes.

    @ivar max_resets: The most C{RST_STREAM} frames from the client per
        C{interval}.
    @ivar max_control_frames: The most control frames (C{SETTINGS},
        C{PING}, C{PRIORITY}, C{WINDOW_UPDATE}, empty C{DATA}, ...) per
        C{interval}, beyond the credit a download earns.
    @ivar interval: The counting interval, in seconds.
    """

    max_resets: int = 200
    max_control_frames: int = 1000
    interval: float = 10.0


def parse_http2(value: Any, key: str, reader: Reader) -> Http2Config:
    """
    The C{[server.http2]} table (at C{key}).
    """
    table = reader.table(value, key, _KEYS)
    settings = {}
    for name in ("max_resets", "max_control_frames"):
        if name in table:
            settings[name] = reader.integer(table[name], child_key(key, name), 1, 1 << 30)
    if "interval" in table:
        settings["interval"] = reader.positive_number(
            table["interval"], child_key(key, "interval")
        )
    return Http2Config(**settings)
