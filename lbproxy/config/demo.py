# -*- test-case-name: tests.test_config -*-
"""
The C{[[demo]]} entries: small HTTP servers lbproxy starts itself, so that
the shipped configuration works with nothing else running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Tuple

from lbproxy.config.errors import child_key, quote
from lbproxy.config.reader import Reader

__all__ = ["DemoBackend", "parse_demos"]

_DEMO_KEYS = ("listen", "name", "text")


@dataclass(frozen=True)
class DemoBackend:
    """
    A small demo HTTP server that lbproxy starts itself, so that the shipped
    configuration works with nothing else running.

    @ivar name: The demo's name.
    @ivar listen: A Twisted server endpoint string.
    @ivar text: The body it answers every request with; when empty, it
        defaults to C{"This is the NAME application."}.
    """

    name: str
    listen: str
    text: str = ""

    def __post_init__(self) -> None:
        if not self.text:
            object.__setattr__(
                self, "text", f"This is the {self.name} application."
            )


def parse_demos(
    value: Any, key: str, reader: Reader, used: Mapping[str, str]
) -> Tuple[DemoBackend, ...]:
    """
    The C{[[demo]]} array of tables.

    @param used: Endpoint strings already listened on (C{server.listen}),
        mapped to the key that names them; a demo may not reuse one.
    """
    entries = reader.array(value, key, "[[demo]] tables")
    demos: List[DemoBackend] = []
    names: Dict[str, int] = {}
    listens = dict(used)
    for index, entry in enumerate(entries):
        entry_key = f"{key}[{index}]"
        table = reader.table(entry, entry_key, _DEMO_KEYS)
        name_key = child_key(entry_key, "name")
        name = reader.nonempty_string(reader.required(table, entry_key, "name"), name_key)
        if name in names:
            raise reader.fail(
                name_key, f"duplicate demo name {quote(name)} (also {key}[{names[name]}])"
            )
        names[name] = index
        listen_key = child_key(entry_key, "listen")
        listen = reader.unused_endpoint(
            reader.required(table, entry_key, "listen"), listen_key, listens
        )
        text = ""
        if "text" in table:
            text = reader.string(table["text"], child_key(entry_key, "text"))
        demos.append(DemoBackend(name=name, listen=listen, text=text))
    return tuple(demos)
