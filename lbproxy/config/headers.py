# -*- test-case-name: tests.test_edgeconfig -*-
"""
A route's C{headers} table: request and response headers to set, add and
remove.
"""

from __future__ import annotations

from collections.abc import Mapping as _MappingABC
from dataclasses import dataclass
from typing import Any, Dict, List, Tuple

from lbproxy.config.errors import child_key, describe, quote
from lbproxy.config.reader import Reader
from lbproxy.policy.headerrules import HeaderRules, Template, header_name

__all__ = ["HeaderRulesConfig", "parse_header_rules"]

_HEADER_RULE_KEYS = (
    "request_add",
    "request_remove",
    "request_set",
    "response_add",
    "response_remove",
    "response_set",
)


@dataclass(frozen=True)
class HeaderRulesConfig:
    """
    A route's C{headers} table.  Set and add rules are C{(name, value
    template)} pairs in file order (an array value in an add table gives
    one pair per item); remove rules are names.
    """

    request_set: Tuple[Tuple[str, str], ...] = ()
    request_add: Tuple[Tuple[str, str], ...] = ()
    request_remove: Tuple[str, ...] = ()
    response_set: Tuple[Tuple[str, str], ...] = ()
    response_add: Tuple[Tuple[str, str], ...] = ()
    response_remove: Tuple[str, ...] = ()


def parse_header_rules(value: Any, key: str, reader: Reader) -> HeaderRulesConfig:
    """
    A route's C{headers} table: C{request_set}, C{request_add},
    C{response_set}, C{response_add} (tables of header name to value; an add
    value may be an array, one header per item) and C{request_remove},
    C{response_remove} (arrays of header names).
    """
    table = reader.table(value, key, _HEADER_RULE_KEYS)
    settings: Dict[str, Any] = {}
    for direction in ("request", "response"):
        set_name, add_name, remove_name = (
            f"{direction}_set",
            f"{direction}_add",
            f"{direction}_remove",
        )
        if set_name in table:
            settings[set_name] = _rule_table(
                table[set_name], child_key(key, set_name), reader, direction, False
            )
        if add_name in table:
            settings[add_name] = _rule_table(
                table[add_name], child_key(key, add_name), reader, direction, True
            )
        if remove_name in table:
            remove_key = child_key(key, remove_name)
            items = reader.array(table[remove_name], remove_key, 'e.g. ["Server"]')
            names: List[str] = []
            for index, item in enumerate(items):
                item_key = f"{remove_key}[{index}]"
                name = _rule_name(reader.string(item, item_key), item_key, reader)
                if direction == "request" and name.lower() == "host":
                    raise reader.fail(item_key, "Host cannot be removed from requests")
                names.append(name)
            settings[remove_name] = tuple(names)
    config = HeaderRulesConfig(**settings)
    try:
        # The rules together, as the proxy will compile them.
        HeaderRules(
            requestSet=config.request_set,
            requestAdd=config.request_add,
            requestRemove=config.request_remove,
            responseSet=config.response_set,
            responseAdd=config.response_add,
            responseRemove=config.response_remove,
        )
    except ValueError as e:  # pragma: no cover - each rule was checked above
        raise reader.fail(key, str(e)) from None
    return config


def _rule_name(name: str, key: str, reader: Reader) -> str:
    try:
        header_name(name)
    except ValueError as e:
        raise reader.fail(key, str(e)) from None
    return name


def _rule_table(
    value: Any, key: str, reader: Reader, direction: str, add: bool
) -> Tuple[Tuple[str, str], ...]:
    if not isinstance(value, _MappingABC):
        raise reader.fail(
            key,
            'expected a table of header name = value, e.g. { "X-Env" = "prod" }, '
            f"got {describe(value)}",
        )
    pairs: List[Tuple[str, str]] = []
    seen: Dict[str, str] = {}
    for name, template in value.items():
        name_key = child_key(key, name)
        _rule_name(name, name_key, reader)
        lower = name.lower()
        if lower in seen:
            raise reader.fail(
                name_key, f"header {quote(name)} is also given as {quote(seen[lower])}"
            )
        seen[lower] = name
        if direction == "request" and add and lower == "host":
            raise reader.fail(name_key, "Host cannot be added to requests (use request_set)")
        if add and isinstance(template, (list, tuple)):
            templates = [
                (f"{name_key}[{index}]", item) for index, item in enumerate(template)
            ]
        else:
            templates = [(name_key, template)]
        for template_key, item in templates:
            if not isinstance(item, str):
                expected = "a string or an array of strings" if add else "a string"
                raise reader.fail(template_key, f"expected {expected}, got {describe(item)}")
            try:
                Template(item)
            except ValueError as e:
                raise reader.fail(template_key, str(e)) from None
            pairs.append((name, item))
    return tuple(pairs)
