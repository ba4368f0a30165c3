# -*- test-case-name: tests.test_config -*-
"""
Load and validate lbproxy's TOML configuration.

Everything here is pure: a TOML file (or an already-parsed C{dict}) goes in,
an immutable, fully validated L{Config} comes out, or a L{ConfigError} that
names the file, the offending key and the reason.  Nothing binds, connects
or touches the reactor; listen strings are checked by I{constructing} their
endpoints with a dummy reactor.

The schema is documented for operators in C{docs/configuration.md}.

This package's modules, from the bottom up (C{lbproxy.config.NAME}):

  - C{errors}: L{ConfigError}, and how errors name keys and values;
  - C{reader}: the one reader of typed values that every section uses;
  - C{syntax}: host names, path prefixes, networks and methods;
  - one module per section, each with its frozen values and its parser:
    C{server} (and C{clientaddr}), C{health}, C{tls}, C{targets},
    C{pools}, C{access}, C{ratelimit}, C{cors}, C{headers}, C{routes},
    C{demo}, and C{flat} (the flat C{[[targets]]} form);
  - C{document}: the whole file, and the checks across sections.

They import each other directly, never this module, which only gathers
the names the rest of lbproxy uses.
"""

from __future__ import annotations

from lbproxy.config.access import AccessConfig, BasicAuthConfig
from lbproxy.config.cors import CorsConfig
from lbproxy.config.demo import DemoBackend
from lbproxy.config.document import Config, load_config, parse_config
from lbproxy.config.errors import ConfigError, child_key
from lbproxy.config.headers import HeaderRulesConfig
from lbproxy.config.health import HealthConfig
from lbproxy.config.pools import BALANCE_ALGORITHMS, Pool
from lbproxy.config.ratelimit import RateLimitConfig
from lbproxy.config.routes import Route
from lbproxy.config.server import ServerConfig
from lbproxy.config.targets import Target
from lbproxy.config.tls import CertificateFiles, TLSConfig, UpstreamTLS

__all__ = [
    "AccessConfig",
    "BALANCE_ALGORITHMS",
    "BasicAuthConfig",
    "CertificateFiles",
    "Config",
    "ConfigError",
    "CorsConfig",
    "DemoBackend",
    "HeaderRulesConfig",
    "HealthConfig",
    "Pool",
    "RateLimitConfig",
    "Route",
    "ServerConfig",
    "TLSConfig",
    "Target",
    "UpstreamTLS",
    "child_key",
    "load_config",
    "parse_config",
]
