# -*- test-case-name: tests.test_etcd -*-
"""
The sources of change a fleet of proxies shares, started with the proxy:
the C{[etcd]} watch (its pools and routes laid over the file on every
reload) and each pool's discovery feed.  See C{docs/fleet.md}.
"""

from __future__ import annotations

from typing import List

from twisted.application.service import Service

from lbproxy.admin.changes import set_members
from lbproxy.discovery.etcdclient import EtcdClient
from lbproxy.discovery.etcdwatch import EtcdWatch
from lbproxy.discovery.feed import PoolFeed

__all__ = ["etcd_client_tls", "start_fleet"]


def etcd_client_tls(config):
    """
    A Twisted web client policy for C{https://} etcd endpoints: verified
    with C{ca} (or the system's trust store), presenting C{cert} and C{key}
    when given.  L{None} when no endpoint is C{https://}.
    """
    if not any(e.startswith("https://") for e in config.endpoints):
        return None
    from twisted.internet.ssl import Certificate, PrivateCertificate, optionsForClientTLS
    from twisted.web.client import BrowserLikePolicyForHTTPS
    from twisted.web.iweb import IPolicyForHTTPS
    from zope.interface import implementer

    trust = None
    if config.ca is not None:
        with open(config.ca, "rb") as f:
            trust = Certificate.loadPEM(f.read())
    client = None
    if config.cert is not None:
        with open(config.cert, "rb") as f, open(config.key, "rb") as k:
            client = PrivateCertificate.loadPEM(f.read() + b"\n" + k.read())
    if trust is None and client is None:
        return BrowserLikePolicyForHTTPS()

    @implementer(IPolicyForHTTPS)
    class _Policy:
        def creatorForNetloc(self, hostname, port):
            return optionsForClientTLS(hostname.decode("ascii"), trustRoot=trust,
                                       clientCertificate=client)

    return _Policy()


def start_fleet(parent, config, reactor, core, reloader) -> List[Service]:
    """
    Start (as children of C{parent}) the etcd watch, if C{[etcd]} is set,
    and a L{PoolFeed} per pool with C{discovery}.

    @param reloader: the L{lbproxy.app.reload.Reloader}: etcd's state
        becomes its overlay, and each etcd change reloads through it.
    """
    services: List[Service] = []
    if config.etcd is not None:
        tls = etcd_client_tls(config.etcd)
        clients = [EtcdClient(reactor, base, tls) for base in config.etcd.endpoints]
        watch = EtcdWatch(config.etcd, reactor, clients, reloader.reload)
        reloader.overlay = watch.state
        core.etcd = watch
        services.append(watch)
    for name, pool in config.pools.items():
        if pool.discovery is not None:
            url = pool.discovery
            services.append(PoolFeed(
                url, name, reactor,
                lambda pool, targets, url=url: set_members(core, pool, targets, url),
            ))
    for service in services:
        service.setServiceParent(parent)
    return services
