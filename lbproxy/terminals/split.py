# -*- test-case-name: tests.test_traffic -*-
"""
The terminal of a route with C{split}: hand the request to the terminal of
one of several pools (forwarding or upgrading it), chosen by a
L{SplitChooser <lbproxy.balance.split.SplitChooser>}.
"""

from __future__ import annotations

from lbproxy.balance.split import SplitChooser
from lbproxy.pipeline.chain import Terminal
from lbproxy.pipeline.context import RequestContext

__all__ = ["SplitForward"]


class SplitForward(Terminal):
    """
    @ivar forwards: one terminal per side of the split, in order.
    @ivar chooser: the L{SplitChooser} among them.
    """

    name = "split"

    def __init__(self, split, forwards) -> None:
        """
        @param split: the route's L{lbproxy.config.traffic.Split}.
        @param forwards: one terminal per side, in the split's order (each
            a L{lbproxy.terminals.upgrade.ForwardOrUpgrade} to its pool).
        """
        self.forwards = tuple(forwards)
        self.chooser = SplitChooser(
            self.forwards,
            [weight for _, weight in split.arms],
            [name for name, _ in split.arms],
            split.by,
            split.header,
        )
        self._choose = self.chooser.choose

    def __call__(self, context: RequestContext) -> None:
        self._choose(context)(context)
