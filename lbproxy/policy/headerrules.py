# -*- test-case-name: tests.test_headerrules -*-
"""
Per-route header rules: set, add and remove request and response
headers, with values that may name variables of the request.

Pure: no Twisted, no I/O.  Values are templates compiled once: literal
text, references to the variables in L{VARIABLES} (the name in braces,
as in C{"{client_ip}"}), and doubled braces (two opening or two closing
ones) for literal braces.

For each direction the rules apply in this order to a list of C{(name,
value)} byte pairs, names compared case-insensitively:

  1. C{remove}: every header of these names is dropped;
  2. C{set}: every header of these names is dropped, then one is appended
     with the rule's value;
  3. C{add}: a header is appended, whatever is there already.

A value that, once its variables are substituted, contains CR, LF or NUL
is refused: that header is not written (a C{set} still drops the headers
it replaces).  So is a value naming a variable the caller did not supply.
"""

from __future__ import annotations

import binascii
import os
import re
from typing import Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from lbproxy.wire.http1 import is_token

__all__ = [
    "HeaderRules",
    "MANAGED_HEADERS",
    "Template",
    "VARIABLES",
    "header_name",
    "new_request_id",
]

Header = Tuple[bytes, bytes]

#: The variables a value may name.
VARIABLES = frozenset(
    ["client_ip", "request_id", "host", "scheme", "method", "path", "pool", "target"]
)


#: Headers lbproxy writes itself (framing and hop-by-hop, RFC 9110 7.6.1):
#: no rule may name them.
MANAGED_HEADERS = frozenset(
    [
        "connection",
        "content-length",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ]
)
_PART = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


#: Random bytes read ahead for request ids: one system call per 256 ids
#: instead of one per request.
_RANDOM_BATCH = 16 * 256
_random = [b"", 0]


def _forget_random() -> None:
    # A forked child must not hand out its parent's ids.
    _random[0], _random[1] = b"", 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_random)


def new_request_id() -> bytes:
    """
    A new request id: 16 random bytes (from C{os.urandom}) in lower-case
    hex (32 characters).
    """
    data, offset = _random
    if offset + 16 > len(data):
        data, offset = _random[0], _random[1] = os.urandom(_RANDOM_BATCH), 0
    _random[1] = offset + 16
    return binascii.hexlify(data[offset : offset + 16])


class Template:
    """
    A compiled header value.

    @ivar source: The value as written.
    @ivar variables: The variable names it uses.
    """

    def __init__(self, source: str) -> None:
        """
        @raise ValueError: For an unknown variable, an unmatched brace, or
            a control character (other than tab) in the literal text.
        """
        self.source = source
        parts: List[Union[bytes, str]] = []
        literal: List[str] = []
        position = 0
        for match in _PART.finditer(source):
            literal.append(source[position : match.start()])
            position = match.end()
            token = match.group(0)
            if token == "{{":
                literal.append("{")
            elif token == "}}":
                literal.append("}")
            elif match.group(1) is None:
                raise ValueError(
                    f'unmatched "{token}" at offset {match.start()} '
                    '(write "{{" or "}}" for a literal brace)'
                )
            else:
                name = match.group(1)
                if name not in VARIABLES:
                    raise ValueError(
                        f"unknown variable {{{name}}} (known: "
                        + ", ".join("{" + v + "}" for v in sorted(VARIABLES))
                        + ")"
                    )
                text = "".join(literal)
                if text:
                    parts.append(_literal(text))
                literal = []
                parts.append(name)
        literal.append(source[position:])
        text = "".join(literal)
        if text:
            parts.append(_literal(text))
        self._parts: Tuple[Union[bytes, str], ...] = tuple(parts)
        self.variables = frozenset(p for p in parts if isinstance(p, str))
        self._constant: Optional[bytes] = None
        if not self.variables:
            self._constant = b"".join(parts)  # type: ignore[arg-type]

    def render(self, variables: Mapping[str, bytes]) -> Optional[bytes]:
        """
        The value with the variables substituted.

        @param variables: Variable name to value.
        @return: The value, or L{None} when a variable is missing or the
            result holds CR, LF or NUL.
        """
        if self._constant is not None:
            return self._constant
        pieces = []
        for part in self._parts:
            if isinstance(part, str):
                value = variables.get(part)
                if value is None:
                    return None
                pieces.append(value)
            else:
                pieces.append(part)
        result = b"".join(pieces)
        if b"\r" in result or b"\n" in result or b"\0" in result:
            return None
        return result


def _literal(text: str) -> bytes:
    for char in text:
        if (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F:
            raise ValueError(f"control character {char!r} in value")
    return text.encode("utf-8")


def header_name(name: str) -> bytes:
    """
    Check the name of a header a rule sets, adds or removes.

    @raise ValueError: Unless C{name} is an RFC 9110 token, or when it is
        one of L{MANAGED_HEADERS}.
    """
    if not is_token(name):
        raise ValueError(
            f"invalid header name {name!r} (letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    if name.lower() in MANAGED_HEADERS:
        raise ValueError(f"{name} is managed by lbproxy and cannot be changed by rules")
    return name.encode("ascii")


RuleInput = Union[Mapping[str, Union[str, Sequence[str]]], Iterable[Tuple[str, str]]]


def _pairs(rules: RuleInput) -> List[Tuple[str, str]]:
    """
    C{(name, value)} pairs from a mapping (a sequence value meaning one
    header per item) or from pairs.
    """
    items = rules.items() if isinstance(rules, Mapping) else rules
    pairs = []
    for name, value in items:
        if isinstance(value, str):
            pairs.append((name, value))
        else:
            pairs.extend((name, v) for v in value)
    return pairs


class _Direction:
    """
    The rules for one direction (request or response), compiled.
    """

    def __init__(
        self, set_: RuleInput, add: RuleInput, remove: Iterable[str], request: bool
    ) -> None:
        setPairs = _pairs(set_)
        addPairs = _pairs(add)
        remove = list(remove)
        if request:
            # A request must keep exactly one Host; set may rewrite it.
            for name in remove + [n for n, _ in addPairs]:
                if name.lower() == "host":
                    raise ValueError(
                        "Host cannot be added or removed (use set to rewrite it)"
                    )
        seen = set()
        for name, _ in setPairs:
            if name.lower() in seen:
                raise ValueError(f"header {name!r} is set twice")
            seen.add(name.lower())
        self.drop = frozenset(
            header_name(n).lower() for n in remove + [n for n, _ in setPairs]
        )
        self.write: Tuple[Tuple[bytes, Template], ...] = tuple(
            (header_name(name), Template(value)) for name, value in setPairs + addPairs
        )
        self.variables = frozenset().union(*(t.variables for _, t in self.write))
        self.empty = not self.drop and not self.write

    def apply(self, pairs: Iterable[Header], variables: Mapping[str, bytes]) -> List[Header]:
        drop = self.drop
        if drop:
            out = [pair for pair in pairs if pair[0].lower() not in drop]
        else:
            out = list(pairs)
        for name, template in self.write:
            value = template.render(variables)
            if value is not None:
                out.append((name, value))
        return out


class HeaderRules:
    """
    The header rules of one route.

    Set and add rules are given as a mapping of header name to value
    template (a sequence of templates adds one header each), or as
    C{(name, template)} pairs; remove rules as header names.

    @ivar variables: Every variable some rule uses, so the caller can skip
        computing the others.
    """

    def __init__(
        self,
        requestSet: RuleInput = (),
        requestAdd: RuleInput = (),
        requestRemove: Iterable[str] = (),
        responseSet: RuleInput = (),
        responseAdd: RuleInput = (),
        responseRemove: Iterable[str] = (),
    ) -> None:
        """
        @raise ValueError: For an invalid header name or one of
            L{MANAGED_HEADERS}, a name set twice, C{Host} in C{requestAdd}
            or C{requestRemove}, or a bad template (see L{Template}).
        """
        self._request = _Direction(requestSet, requestAdd, requestRemove, True)
        self._response = _Direction(responseSet, responseAdd, responseRemove, False)
        self.variables = self._request.variables | self._response.variables

    def __bool__(self) -> bool:
        return not (self._request.empty and self._response.empty)

    def applyRequest(
        self, pairs: Iterable[Header], variables: Mapping[str, bytes]
    ) -> List[Header]:
        """
        Apply the request rules.

        @param pairs: The request headers to forward, in order.
        @param variables: Variable name to value, for the variables in
            L{variables}.
        @return: A new list of pairs.
        """
        return self._request.apply(pairs, variables)

    def applyResponse(
        self, pairs: Iterable[Header], variables: Mapping[str, bytes]
    ) -> List[Header]:
        """
        Apply the response rules.

        @param pairs: The response headers to relay, in order.
        @param variables: Variable name to value.
        @return: A new list of pairs.
        """
        return self._response.apply(pairs, variables)
