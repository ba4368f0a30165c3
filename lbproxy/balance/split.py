# -*- test-case-name: tests.test_traffic -*-
"""
Which side of a route's C{split} a request goes to (canary, blue/green).

A request header (C{split_header}) naming one of the split's pools always
wins, whatever the weights (a weight of 0 included: a pool reachable only
by those who ask for it).  Otherwise C{split_by = "random"} draws each
request with the weights' odds; C{"client_ip"} and C{"cookie:NAME"} hash
the client's address or cookie to a fixed place in the weights' range, so
a client stays on its side while the weights stay the same and, when they
change, only the clients in the share that moved change side (a request
without the cookie is drawn at random).

Pure: no Twisted, no I/O, no clock.
"""

from __future__ import annotations

import random as _random
from typing import Callable, Dict, Optional, Sequence, Tuple

from lbproxy.balance.context import key_reader
from lbproxy.balance.hashring import hash_key

__all__ = ["SplitChooser"]

_SPAN = float(1 << 64)


class SplitChooser:
    """
    Chooses among a split's sides.

    @ivar sides: what each side stands for (e.g. its terminal), in order.
    @ivar weights: each side's weight.
    """

    def __init__(
        self,
        sides: Sequence[object],
        weights: Sequence[int],
        names: Sequence[str],
        by: str = "random",
        header: Optional[str] = None,
        random: Optional[Callable[[], float]] = None,
    ) -> None:
        """
        @param names: each side's pool name, as C{header} names it.
        @param by: C{"random"}, C{"client_ip"} or C{"cookie:NAME"}.
        @param header: the request header that names a side, or L{None}.
        @param random: a function returning floats in [0, 1) (seeded in
            tests).
        """
        if len(sides) != len(weights) or len(sides) != len(names) or not sides:
            raise ValueError("a split needs as many sides, weights and names, at least one")
        if any(w < 0 for w in weights) or not sum(weights):
            raise ValueError("split weights must be at least 0, one above 0")
        self.sides = tuple(sides)
        self.weights = tuple(weights)
        self._total = sum(weights)
        # The upper end of each side's range, for a draw in [0, total).
        bounds = []
        running = 0
        for weight in weights:
            running += weight
            bounds.append(running)
        self._bounds: Tuple[int, ...] = tuple(bounds)
        self._random = random if random is not None else _random.Random().random
        self._byName: Dict[bytes, object] = {
            name.encode("utf-8"): side for name, side in zip(names, sides)
        }
        self._header = header.encode("ascii") if header is not None else None
        if by == "random":
            self._key = None
        elif by == "client_ip":
            self._key = key_reader("client_ip")
        else:
            source, _, name = by.partition(":")
            self._key = key_reader(source, name.encode("ascii"))

    def choose(self, context) -> object:
        """
        The side for the request C{context}
        (L{lbproxy.balance.context.RequestInfo}).
        """
        if self._header is not None:
            values = context.request.requestHeaders.getRawHeaders(self._header)
            if values:
                side = self._byName.get(values[0].strip())
                if side is not None:
                    return side
        key = self._key(context) if self._key is not None else None
        if key is None:
            point = self._random() * self._total
        else:
            point = hash_key(key) / _SPAN * self._total
        for index, bound in enumerate(self._bounds):
            if point < bound:
                return self.sides[index]
        return self.sides[-1]
