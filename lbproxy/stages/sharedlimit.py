# -*- test-case-name: tests.test_sharedlimit -*-
"""
A rate limit shared by a fleet (C{rate_limit = { ..., shared =
"redis://..." }}): the buckets live in Redis, checked by one atomic Lua
script per request (one round trip; each key expires once its bucket is
full again), so N proxies enforce one limit together.

The check is remote, so the stage holds the request (L{HELD}) and goes on
with L{Chain.resume} when Redis answers.  When Redis is unreachable, or
does not answer within 250 ms, the request is checked against this
process's own buckets instead (the same GCRA as
L{lbproxy.policy.ratelimit}): a request is never failed because Redis is
down.  The change either way is logged once.
"""

from __future__ import annotations

from typing import Optional

from twisted.logger import Logger

from lbproxy.discovery.redis import RedisClient
from lbproxy.pipeline.chain import HELD, Stage
from lbproxy.pipeline.context import LocalReply, RequestContext
from lbproxy.policy.ratelimit import RateLimiter, retry_after

__all__ = ["GCRA_SCRIPT", "SharedRateLimit", "limit_stage"]

log = Logger()

#: KEYS[1]: the bucket; ARGV: the interval (1 / rate) and the tolerance
#: ((burst - 1) * interval), in seconds.  Redis's own clock, so proxies
#: whose clocks differ agree.  Returns "0" (allowed) or the seconds to
#: wait, as a string (Lua numbers become integers in replies).
GCRA_SCRIPT = b"""
if redis.replicate_commands then pcall(redis.replicate_commands) end
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local wait = tat - now - tolerance
if wait > 1e-9 then return tostring(wait) end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new), 'PX', math.ceil((new - now) * 1000) + 1000)
return '0'
"""


def _onState(url: str):
    def changed(ready: bool, reason: str) -> None:
        if ready:
            log.info("redis {url}: connected; shared rate limits are shared again", url=url)
        else:
            log.warn("redis {url} unreachable ({reason}): shared rate limits fall back to "
                     "this proxy's local buckets until it is back", url=url, reason=reason)
    return changed


def redis_client(services, url: str) -> RedisClient:
    """
    The process's connection to C{url} (made once, outliving runtimes).
    """
    client = services.redis.get(url)
    if client is None:
        client = RedisClient(url, services.clock, scripts=(GCRA_SCRIPT,),
                             onState=_onState(url))
        services.redis[url] = client
    return client


def limit_stage(config, limiter: RateLimiter, services, scope: str, local):
    """
    The stage of one C{rate_limit} table: C{local(limiter)} unless it is
    C{shared}.

    @param scope: what names the limit in Redis keys (C{"*"} for the
        global one, the route's host and path), the same in every proxy.
    """
    if config.shared is None or getattr(services, "redis", None) is None:
        return local(limiter)
    return SharedRateLimit(limiter, redis_client(services, config.shared),
                           f"lbproxy:rl:{scope}:{config.rate:g}:{config.burst}:")


class SharedRateLimit(Stage):
    """
    @ivar limiter: the local L{RateLimiter} (the fallback, and its
        settings).
    @ivar client: the L{RedisClient}.
    @ivar prefix: the Redis key prefix of this limit's buckets.
    """

    name = "rate_limit"

    def __init__(self, limiter: RateLimiter, client: RedisClient, prefix: str) -> None:
        self.limiter = limiter
        self.client = client
        self.prefix = prefix
        self._interval = repr(1.0 / limiter.rate)
        self._tolerance = repr((limiter.burst - 1) / limiter.rate)

    def request(self, context: RequestContext) -> Optional[LocalReply]:
        if not self.client.ready:
            return self._local(context)
        d = self.client.evalsha(0, (self.prefix + context.clientIp,),
                                (self._interval, self._tolerance))
        d.addCallbacks(self._answered, self._failed, (context,), None, (context,))
        return HELD

    def _local(self, context: RequestContext) -> Optional[LocalReply]:
        return _refusal(self.limiter.check(context.clientIp, context.start))

    def _answered(self, result, context: RequestContext) -> None:
        try:
            delay = float(result)
        except (TypeError, ValueError):
            delay = 0.0
        self._go(context, _refusal(delay))

    def _failed(self, failure, context: RequestContext) -> None:
        self._go(context, self._local(context))

    def _go(self, context: RequestContext, reply: Optional[LocalReply]) -> None:
        if getattr(context.request, "_disconnected", False):
            # The client went away while Redis was asked (Twisted's
            # Request flag): nothing to send.
            context.status = 499
            context.chain.finish(context)
            return
        if reply is None:
            context.chain.resume(context, self)
        else:
            context.chain.reply(context, reply)


def _refusal(delay: float) -> Optional[LocalReply]:
    if delay:
        return LocalReply(
            429, b"Too Many Requests", [(b"Retry-After", b"%d" % (retry_after(delay),))]
        )
    return None
