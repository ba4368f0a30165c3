# -*- test-case-name: tests.test_pipeline -*-
"""
Every stage lbproxy has, in the one order a request meets them (the order
docs/security.md documents), with the factory that builds it for a chain.

Three kinds of chain are built with each runtime:

  - C{ENTRY}: every request, before routing; its terminal routes;
  - C{ROUTE}: one per route, ending in forwarding to the route's pool;
  - C{UNROUTED}: requests no route matches; the global policies, then 404.

A factory gets the L{Scope} of the chain being built and returns the
stage, L{None} when the chain needs no such stage (a route without CORS
gets no CORS stage), or several stages (the global rate limit, then the
route's).  To add a stage: write its module in L{lbproxy.stages}, then add
one line here at its place.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple, Union

from lbproxy.runtime.policies import (
    build_access_policy,
    build_client_address_resolver,
    build_cors_policy,
    build_header_rules,
    build_rate_limiter,
)
from lbproxy.pipeline.chain import Stage
from lbproxy.stages.access import Access
from lbproxy.stages.accesslog import AccessLogStage
from lbproxy.stages.bodylimit import BodyLimit
from lbproxy.stages.cache import build_cache_stage
from lbproxy.stages.clientaddress import TrustedClientAddress
from lbproxy.stages.compress import Compress
from lbproxy.stages.cors import CorsDetect, CorsPreflight
from lbproxy.stages.forwarded import Forwarded
from lbproxy.stages.headerrules import HeaderRulesStage
from lbproxy.stages.headerscan import ScanHeaders
from lbproxy.stages.traffic import mirror_stage, score_stage, sticky_stage
from lbproxy.stages.healthendpoint import HealthEndpoint
from lbproxy.stages.metrics import metrics_stage
from lbproxy.stages.misdirected import Misdirected
from lbproxy.stages.path import NormalizePath
from lbproxy.stages.ratelimit import RateLimit
from lbproxy.stages.sharedlimit import limit_stage
from lbproxy.stages.requestid import RequestId
from lbproxy.stages.stripprefix import StripPrefix
from lbproxy.stages.target import RequestTarget

__all__ = ["ENTRY", "ORDER", "ROUTE", "UNROUTED", "Scope"]

ENTRY = "entry"
ROUTE = "route"
UNROUTED = "unrouted"
_ALL = frozenset({ENTRY, ROUTE, UNROUTED})
_ROUTED = frozenset({ROUTE})
_POLICIES = frozenset({ROUTE, UNROUTED})


class Scope:
    """
    What a factory may read while one chain is built.

    @ivar kind: L{ENTRY}, L{ROUTE} or L{UNROUTED}.
    @ivar config: the whole L{lbproxy.config.Config}.
    @ivar server: C{config.server}.
    @ivar services: the L{lbproxy.runtime.services.Services}.
    @ivar route: the route's L{lbproxy.config.Route} (L{ROUTE} only).
    @ivar pool: the route's runtime pool (L{ROUTE} only).
    @ivar shared: the runtime's L{Shared} global policies.
    @ivar pools: the runtime's pools by name (L{ROUTE} only).
    """

    def __init__(self, kind, config, services, shared, route=None, pool=None, pools=None) -> None:
        self.kind = kind
        self.config = config
        self.server = config.server
        self.services = services
        self.shared = shared
        self.route = route
        self.pool = pool
        self.pools = pools
        self._cors = None

    def cors(self):
        """
        The route's L{lbproxy.policy.cors.CorsPolicy} (one for both CORS
        stages), or L{None}.
        """
        if self._cors is None and self.route is not None and self.route.cors is not None:
            self._cors = build_cors_policy(self.route.cors)
        return self._cors


class Shared:
    """
    Policies of the whole configuration, one instance for every chain of a
    runtime (a global rate limit counts every request once).

    @ivar limiter: the global L{lbproxy.policy.ratelimit.RateLimiter}, or L{None}.
    @ivar access: the global L{lbproxy.policy.access.AccessPolicy}, or L{None}.
    @ivar clientAddress: the L{lbproxy.policy.clientaddr.ClientAddressResolver},
        or L{None} without trusted proxies.
    @ivar accessLog: the one L{AccessLogStage}, or L{None}.
    """

    def __init__(self, limiter, access, clientAddress, accessLog) -> None:
        self.limiter = limiter
        self.access = access
        self.clientAddress = clientAddress
        self.accessLog = accessLog


Built = Union[None, Stage, Sequence[Stage]]


def _rate_limits(scope: Scope) -> Built:
    # (A RateLimiter has a length, its number of clients: test for None.)
    stages = []
    if scope.shared.limiter is not None:
        stages.append(limit_stage(scope.config.rate_limit, scope.shared.limiter,
                                  scope.services, "*", RateLimit))
    if scope.route is not None and scope.route.rate_limit is not None:
        limit = scope.route.rate_limit
        stages.append(limit_stage(limit, build_rate_limiter(limit), scope.services,
                                  f"{scope.route.host or '*'}{scope.route.path}", RateLimit))
    return stages


def _access(scope: Scope) -> Built:
    stages = [Access(scope.shared.access)] if scope.shared.access is not None else []
    if scope.route is not None and scope.route.access is not None:
        stages.append(Access(build_access_policy(scope.route.access)))
    return stages


def _body_limit(scope: Scope) -> Built:
    route = scope.route
    limit = scope.server.max_body_size if route.max_body_size is None else route.max_body_size
    return BodyLimit(limit) if limit else None


def _request_id(scope: Scope) -> Built:
    header = scope.server.request_id_header
    if header is None:
        return None
    # Before routing and for unrouted requests only the response part: the
    # id on a 400, 404, 429, ... and in the log.
    return RequestId(header, forward=scope.kind == ROUTE)


def _header_rules(scope: Scope) -> Built:
    if scope.route.headers is None:
        return None
    return HeaderRulesStage(build_header_rules(scope.route.headers), scope.pool.name)


def _cors_detect(scope: Scope) -> Built:
    policy = scope.cors()
    return CorsDetect(policy) if policy is not None else None


def _cors_preflight(scope: Scope) -> Built:
    policy = scope.cors()
    return CorsPreflight(policy) if policy is not None else None


Factory = Callable[[Scope], Built]

#: C{(name, kinds of chain, factory)}, in request order.
ORDER: Tuple[Tuple[str, frozenset, Factory], ...] = (
    ("request_target", frozenset({ENTRY}), lambda s: RequestTarget()),
    ("misdirected", frozenset({ENTRY}), lambda s: Misdirected() if s.config.tls is not None else None),
    ("normalize_path", frozenset({ENTRY}),
     lambda s: NormalizePath(s.server.encoded_slashes == "reject")),
    ("health_endpoint", frozenset({ENTRY}),
     lambda s: HealthEndpoint(s.server.health_endpoint) if s.server.health_endpoint else None),
    ("client_address", frozenset({ENTRY}),
     lambda s: TrustedClientAddress(s.shared.clientAddress)
     if s.shared.clientAddress is not None else None),
    # -- routing: the entry chain's terminal picks the route's chain --
    ("rate_limit", _POLICIES, _rate_limits),
    ("scan_headers", _ROUTED, lambda s: ScanHeaders(s.server.request_id_header)),
    ("cors_detect", _ROUTED, _cors_detect),
    ("access", _POLICIES, _access),
    # -- an unrouted request ends here: 404 --
    ("body_limit", _ROUTED, _body_limit),
    ("cors_preflight", _ROUTED, _cors_preflight),
    ("strip_prefix", _ROUTED, lambda s: StripPrefix(s.route.path) if s.route.strip_prefix else None),
    ("request_id", _ALL, _request_id),
    ("header_rules", _ROUTED, _header_rules),
    ("forwarded", _ROUTED, lambda s: Forwarded()),
    # Before the cache: its response part then runs after the cache's, so
    # the cookie is set per client and never stored with a response.
    ("sticky", _ROUTED, sticky_stage),
    # Before the cache too: the cache stores the score header (its hook
    # runs first), which this stage takes off every answer, hits included.
    ("score_feedback", _ROUTED, score_stage),
    # After the policies (a hit is still access-checked and rate limited)
    # and the header rules (whose response part then runs on hits too);
    # before compression, so the cache stores what compression made
    # (compressed variants, keyed by Vary: Accept-Encoding).
    ("cache", _ROUTED, build_cache_stage),
    ("compress", _ROUTED, lambda s: Compress(s.route.compress) if s.route.compress else None),
    # After the cache: a hit is not copied (no backend sees it).
    ("mirror", _ROUTED, mirror_stage),
    ("access_log", _ALL, lambda s: s.shared.accessLog),
    ("metrics", _ALL, metrics_stage),
)


def stages_for(scope: Scope) -> Tuple[Stage, ...]:
    """
    The stages of one chain, in order.
    """
    stages = []
    for name, kinds, factory in ORDER:
        if scope.kind not in kinds:
            continue
        built = factory(scope)
        if built is None:
            continue
        if isinstance(built, Stage):
            stages.append(built)
        else:
            stages.extend(built)
    return tuple(stages)


def shared_policies(config, services) -> Shared:
    """
    Build the global policies once for a runtime.
    """
    server = config.server
    return Shared(
        build_rate_limiter(config.rate_limit) if config.rate_limit is not None else None,
        build_access_policy(config.access) if config.access is not None else None,
        build_client_address_resolver(server.trusted_proxies, server.forwarded_header)
        if server.trusted_proxies else None,
        AccessLogStage(services.accessLog, services.clock)
        if services.accessLog is not None else None,
    )

