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

_KEYS = ("max_resets", "max_control_frames", "interval", "penalty")
#: The longest first refusal of a repeat offender, in seconds.
_MAX_PENALTY = 300.0


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
    @ivar penalty: Seconds new connections from the address of a client
        closed for going over a bound are refused (doubling with each
        offence, up to 300 s); 0 refuses none.
    """

    max_resets: int = 200
    max_control_frames: int = 1000
    interval: float = 10.0
    penalty: float = 10.0


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
    if "penalty" in table:
        penalty_key = child_key(key, "penalty")
        penalty = reader.number(table["penalty"], penalty_key)
        if not 0 <= penalty <= _MAX_PENALTY:
            raise reader.fail(
                penalty_key, f"must be from 0 to {_MAX_PENALTY:g} seconds, got {penalty:g}"
            )
        settings["penalty"] = penalty
    return Http2Config(**settings)
