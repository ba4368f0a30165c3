"""
CPU cost of balancing and traffic shaping, in memory:
C{python -m bench.balancing_cpu}.

Two measurements, each the best of a few runs:

  - one C{Pool.pick} per strategy (5 members, nothing in flight) with the
    features that wrap a strategy (sticky sessions, score-driven weights);
  - whole requests through the proxy on a memory reactor (client channel,
    pipeline, backend connection kept alive), for a plain round-robin
    route and for routes with other strategies, sticky sessions (a client
    without the cookie: every answer sets one), score feedback and a
    split, in microseconds per request.  (A mirror's cost is its copy's
    connection and bytes; the end-to-end test measures its effect on the
    primary's p99.)

The plain route is the one that must not get slower.  C{--plain-only}
measures only round robin and the plain route, with nothing a revision
before these features lacks, so the same script compares two trees::

    python -m bench.balancing_cpu --plain-only
    PYTHONPATH=/path/to/other/tree python bench/balancing_cpu.py --plain-only
  A measurement to compare revisions with, not a test:
nothing here passes or fails.  Run it on a quiet machine.
"""

from __future__ import annotations

import sys
import timeit

from lbproxy.balance.pool import Pool
from lbproxy.config import parse_config
from lbproxy.testing import ProxyHarness

PICKS = 100000
REQUESTS = 2000
SECRET = "a benchmark secret of some length"

TARGETS = ["10.1.0.%d:80" % (i,) for i in range(1, 6)]


def _config(route_extra=None, pool_extra=None):
    pool = {"targets": list(TARGETS)}
    pool.update(pool_extra or {})
    route = {"pool": "web"}
    route.update(route_extra or {})
    return {
        "server": {"access_log": False, "request_id_header": False},
        "pools": {"web": pool, "other": {"targets": ["10.2.0.1:80"]}},
        "routes": [route],
    }


#: What each proxied request goes through.
ROUTES = {
    "plain round robin": _config(),
    "least_conn": _config(pool_extra={"balance": "least_conn"}),
    "hash client_ip": _config(pool_extra={"balance": "hash", "hash_balance_factor": 1.25}),
    "sticky": _config(pool_extra={"sticky": {"secret": SECRET}}),
    "header weights": _config(pool_extra={"weights": {"from": "header", "name": "X-Score"}}),
    "split 90/10": _config(
        {"split": [{"pool": "web", "weight": 90}, {"pool": "other", "weight": 10}], "pool": None}
    ),
}


def _target(address: str):
    config = parse_config({"pools": {"p": {"targets": [address]}}}, "bench.toml")
    return config.pools["p"].targets[0]


def pool_of(name: str, extra) -> Pool:
    config = parse_config(_config(pool_extra=dict(extra, balance=name)), "bench.toml")
    from lbproxy.runtime.pools import build_pool
    from lbproxy.runtime.targets import TargetRegistry

    return build_pool("web", config.pools["web"], TargetRegistry())


def pick_cost(pool: Pool) -> float:
    pick = pool.pick
    best = min(timeit.repeat(lambda: pick((), 0.0, None), number=PICKS, repeat=5))
    return best / PICKS * 1e9


def proxied(config) -> float:
    """
    Seconds for L{REQUESTS} kept-alive requests through the proxy.
    """
    proxy = ProxyHarness(config)
    client = proxy.client()
    request = b"GET /x HTTP/1.1\r\nHost: h\r\nCookie: a=b\r\n\r\n"
    answer = b"HTTP/1.1 200 OK\r\nX-Score: 1\r\nContent-Length: 2\r\n\r\nok"
    backends = {}

    def one():
        client.send(request)
        if proxy.pending():
            backend = proxy.accept()
            backends[backend.address] = backend
        else:
            backend = None
        # The backend the request went to is the one with unanswered bytes.
        for candidate in backends.values() if backend is None else (backend,):
            if candidate.transport.value():
                candidate.transport.clear()
                candidate.respond(answer)
                break
        client.transport.clear()

    for _ in range(50):
        one()
    return min(timeit.repeat(one, number=REQUESTS, repeat=3))


def main(argv=None) -> int:
    plainOnly = "--plain-only" in (argv or [])
    import lbproxy

    print("lbproxy from", lbproxy.__file__)
    if plainOnly:
        pool = Pool("web", [_target(address) for address in TARGETS])
        print("Pool.pick round_robin, 5 members: %.0f ns" % (pick_cost(pool),))
        seconds = proxied(_config())
        print("Whole requests, plain round robin: %.1f us" % (seconds / REQUESTS * 1e6,))
        return 0
    print("Pool.pick, 5 members (ns per pick, best of 5 x %d):" % (PICKS,))
    for name in ("round_robin", "least_conn", "random", "hash"):
        plain = pick_cost(pool_of(name, {}))
        sticky = pick_cost(pool_of(name, {"sticky": {"secret": SECRET}}))
        scored = pick_cost(pool_of(name, {"weights": {"from": "latency"}}))
        print("  %-12s %6.0f   sticky (no cookie) %6.0f   score weights %6.0f"
              % (name, plain, sticky, scored))
    print("Whole requests in memory (us per request, best of 3 x %d):" % (REQUESTS,))
    for label, config in ROUTES.items():
        route = config["routes"][0]
        if route.get("pool", "") is None:
            del route["pool"]
        seconds = proxied(config)
        print("  %-18s %7.1f" % (label, seconds / REQUESTS * 1e6))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
