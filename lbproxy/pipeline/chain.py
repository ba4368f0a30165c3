# -*- test-case-name: tests.test_pipeline -*-
"""
Stages and the chain that runs them.

A L{Stage} does one job for a request and may have up to three parts:

  - C{request(context)}: runs before the request goes on.  It returns
    L{None} to go on, or a L{LocalReply} to answer the request itself
    (nothing after it runs, the terminal included);
  - C{responseHead(context, headers)}: runs on the end-to-end headers of
    every answer the request gets, forwarded or local, and returns the
    headers to send;
  - C{responseBody(context, data, last)}: only for stages that rewrite a
    forwarded response's body (later compression, the cache's tee): gets
    each piece of the body and returns what goes on (maybe C{b""}); at
    the end it is called once more with C{last} true to flush.  A chain
    with such a stage relays the body without C{Content-Length}, unless
    every such stage sets C{keepsLength} (its body part keeps the length,
    or its head part sets C{context.responseLength} to L{None} when it
    will not);
  - C{done(context)}: runs once the exchange has ended (access log, and
    later metrics and balancing feedback).

A L{Chain} is built once per route when the configuration is built (see
L{lbproxy.pipeline.order}): a route without a feature has no stage for it.
It keeps the parts as tuples of bound methods, so a request costs a loop
and no lookups.  Response hooks run in the reverse order of the request
parts (the stage nearest the backend sees the response first).  The
terminal (forwarding, not-found, routing to another chain; later a cache
hit, an upgrade, a redirect) gets the context once every request part has
let it through.
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence, Tuple

from lbproxy.frontend.reply import local_response
from lbproxy.pipeline.context import HeaderList, LocalReply, RequestContext

__all__ = ["Chain", "HELD", "Stage", "Terminal"]

#: What a stage's request part returns when it has taken the request over
#: (it answers later, or goes on with L{Chain.resume}): the chain stops.
HELD = LocalReply(0, b"held")


class Stage:
    """
    The base of every stage: a subclass defines the parts it needs; the
    others stay L{None} and the chain leaves them out.

    @cvar name: the stage's name in L{lbproxy.pipeline.order.ORDER}.
    @cvar keepsLength: whether its response-body part keeps a response's
        length unless its head part cleared C{context.responseLength}.
    """

    name = "stage"
    keepsLength = False
    request: Optional[Callable[[RequestContext], Optional[LocalReply]]] = None
    responseHead: Optional[Callable[[RequestContext, HeaderList], HeaderList]] = None
    responseBody: Optional[Callable[[RequestContext, bytes, bool], bytes]] = None
    done: Optional[Callable[[RequestContext], None]] = None

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}>"


class Terminal:
    """
    The end of a chain: what happens to a request every stage let through.
    A subclass defines C{__call__(context)}.
    """

    name = "terminal"

    def __call__(self, context: RequestContext) -> None:
        raise NotImplementedError()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}>"


class Chain:
    """
    The stages of one route (or of the runtime's entry, or of requests no
    route matches), in order, and its terminal.

    @ivar stages: the L{Stage}s, in request order.
    @ivar terminal: the L{Terminal}.
    @ivar steps: the stages' request parts, in order.
    @ivar headHooks: the stages' response-head parts, last stage first.
    @ivar bodyFilters: the stages' response-body parts, last stage first
        (usually none).
    @ivar doneHooks: the stages' done parts, in order.
    @ivar keepsLength: whether it has body filters and each keeps the length
        (see L{Stage.keepsLength}).
    """

    __slots__ = (
        "stages", "terminal", "steps", "headHooks", "bodyFilters", "doneHooks", "keepsLength",
    )

    def __init__(self, stages: Sequence[Stage], terminal: Terminal) -> None:
        self.stages: Tuple[Stage, ...] = tuple(stages)
        self.terminal = terminal
        self.steps = tuple(s.request for s in self.stages if s.request is not None)
        self.headHooks = tuple(
            s.responseHead for s in reversed(self.stages) if s.responseHead is not None
        )
        self.bodyFilters = tuple(
            s.responseBody for s in reversed(self.stages) if s.responseBody is not None
        )
        self.doneHooks = tuple(s.done for s in self.stages if s.done is not None)
        self.keepsLength = bool(self.bodyFilters) and all(
            s.keepsLength for s in self.stages if s.responseBody is not None
        )

    def __repr__(self) -> str:
        names = ", ".join(s.name for s in self.stages)
        return f"<Chain [{names}] -> {self.terminal.name}>"

    def names(self) -> Tuple[str, ...]:
        """
        The names of the stages, in order (for tests and the status page).
        """
        return tuple(s.name for s in self.stages)

    def run(self, context: RequestContext) -> None:
        """
        Take a request through the stages: the first local reply answers
        it, else the terminal gets it.
        """
        context.chain = self
        for step in self.steps:
            reply = step(context)
            if reply is not None:
                if reply is not HELD:
                    self.reply(context, reply)
                return
        self.terminal(context)

    def resume(self, context: RequestContext, stage: Stage) -> None:
        """
        Go on with a request C{stage} held (its request part returned
        L{HELD}, e.g. a cache miss waiting for another request's fetch):
        the request parts after it, then the terminal.
        """
        index = self.stages.index(stage)
        for later in self.stages[index + 1 :]:
            if later.request is not None:
                reply = later.request(context)
                if reply is not None:
                    if reply is not HELD:
                        self.reply(context, reply)
                    return
        self.terminal(context)

    def hooksBefore(self, stage: Stage) -> tuple:
        """
        The response-head parts of the stages before C{stage}, in the order
        they run (for an answer C{stage} gives from what it kept, which the
        stages after it already saw).
        """
        index = self.stages.index(stage)
        return tuple(
            s.responseHead for s in reversed(self.stages[:index]) if s.responseHead is not None
        )

    def respondLocally(self, context: RequestContext, reply: LocalReply) -> None:
        """
        Send a local answer through the response hooks, without ending the
        exchange (the caller does, e.g. an L{lbproxy.upstream.exchange.Exchange}
        whose backend failed).
        """
        request = context.request
        if reply.close:
            request.closeAfterResponse()
        headers = list(reply.headers)
        # Set first: a response hook tells a local answer by its status.
        context.status = reply.code
        for hook in self.headHooks:
            headers = hook(context, headers)
        context.local = True
        context.sent = local_response(request, reply.code, reply.phrase, headers, reply.body)

    def reply(self, context: RequestContext, reply: LocalReply) -> None:
        """
        Answer a request locally and end it.
        """
        self.respondLocally(context, reply)
        self.finish(context)

    def filterBody(self, context: RequestContext, data: bytes, last: bool) -> bytes:
        """
        A piece of a forwarded response's body through the body filters
        (C{last}: the end of the body, for them to flush).
        """
        for bodyFilter in self.bodyFilters:
            data = bodyFilter(context, data, last)
        return data

    def finish(self, context: RequestContext) -> None:
        """
        The exchange has ended: run the done hooks.
        """
        for hook in self.doneHooks:
            hook(context)
