# -*- test-case-name: tests.test_edgeconfig -*-
"""
The edge policies that run per request, built from their validated
configuration: rate limiters, access policies, CORS policies, header rules
and the client address resolver.
"""

from __future__ import annotations

from typing import Sequence

from lbproxy.config.access import AccessConfig
from lbproxy.config.cors import CorsConfig
from lbproxy.config.headers import HeaderRulesConfig
from lbproxy.config.ratelimit import RateLimitConfig
from lbproxy.policy.access import AccessPolicy, BasicAuth
from lbproxy.policy.clientaddr import ClientAddressResolver
from lbproxy.policy.cors import CorsPolicy
from lbproxy.policy.headerrules import HeaderRules
from lbproxy.policy.ratelimit import RateLimiter

__all__ = [
    "build_access_policy",
    "build_client_address_resolver",
    "build_cors_policy",
    "build_header_rules",
    "build_rate_limiter",
]


def build_rate_limiter(config: RateLimitConfig, maxKeys: int = 100_000) -> RateLimiter:
    """
    The limiter for a C{rate_limit} table (one per table: buckets are not
    shared between routes).
    """
    return RateLimiter(config.rate, config.burst, maxKeys)


def build_access_policy(config: AccessConfig) -> AccessPolicy:
    """
    The policy for an C{access} table.
    """
    auth = None
    if config.basic_auth is not None:
        auth = BasicAuth(config.basic_auth.realm, config.basic_auth.users)
    return AccessPolicy(
        allow=config.allow,
        deny=config.deny,
        blockedPaths=config.blocked_paths,
        methods=config.methods,
        basicAuth=auth,
    )


def build_cors_policy(config: CorsConfig) -> CorsPolicy:
    """
    The policy for a C{cors} table.
    """
    return CorsPolicy(
        origins=config.origins,
        methods=config.methods,
        headers=config.headers,
        credentials=config.credentials,
        maxAge=config.max_age,
        exposeHeaders=config.expose_headers,
    )


def build_header_rules(config: HeaderRulesConfig) -> HeaderRules:
    """
    The rules for a C{headers} table.
    """
    return HeaderRules(
        requestSet=config.request_set,
        requestAdd=config.request_add,
        requestRemove=config.request_remove,
        responseSet=config.response_set,
        responseAdd=config.response_add,
        responseRemove=config.response_remove,
    )


def build_client_address_resolver(
    trusted_proxies: Sequence[str], header: str = "x-forwarded-for"
) -> ClientAddressResolver:
    """
    The resolver for C{trusted_proxies} (and the header they write).
    """
    return ClientAddressResolver(trusted_proxies, header)
