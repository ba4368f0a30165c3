# -*- test-case-name: tests.test_etcd -*-
"""
The sources of change a fleet of proxies shares, started with the proxy:
the C{[etcd]} watch (its pools and routes laid over the file on every
reload) and each pool's discovery feed.  See C{docs/fleet.md}.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

from twisted.application.service import MultiService, Service

from lbproxy.admin.changes import set_members
from lbproxy.app.reload import reload_line
from lbproxy.discovery.etcdclient import EtcdClient
from lbproxy.discovery.etcdstate import EtcdState
from lbproxy.discovery.etcdwatch import EtcdWatch
from lbproxy.discovery.feed import PoolFeed

__all__ = ["FeedSet", "etcd_client_tls", "etcd_lines", "start_fleet", "worker_reload"]


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
    feeds = FeedSet(core, reactor)
    services.append(feeds)
    services.append(_RedisClosing(core.services))
    for service in services:
        service.setServiceParent(parent)
    feeds.sync(config)
    reloader.onApplied.append(feeds.sync)
    return services


def worker_reload(reloader, text: str, etcd=None):
    """
    In a worker: apply the configuration the main process sent, with the
    etcd keys it sent laid over it (the main process follows etcd; workers
    do not watch it themselves).
    """
    reloader.overlay = EtcdState.load(etcd) if etcd is not None else None
    return reloader.reload("main process", text)


def etcd_lines(reloader, path: str, text) -> List[bytes]:
    """
    In the main process: for a worker (re)started while etcd's keys are
    laid over the file, the configuration in service, as it is sent on a
    change (L{reload_line}).
    """
    if reloader is None or reloader.overlay is None or text is None:
        return []
    return [reload_line(path, text, reloader.overlay)]


class _RedisClosing(Service):
    """
    Closes the shared rate limits' Redis connections when the proxy stops.
    """

    def __init__(self, services) -> None:
        self._services = services

    def stopService(self):
        Service.stopService(self)
        for client in getattr(self._services, "redis", {}).values():
            client.close()


class FeedSet(MultiService):
    """
    A L{PoolFeed} per pool with C{discovery}, following reloads: a pool
    that gains a feed (from the file or etcd) starts one; a pool that loses
    it (or goes) stops it, and its targets are the configuration's again.
    """

    def __init__(self, core, reactor) -> None:
        MultiService.__init__(self)
        self.core = core
        self.reactor = reactor
        self.feeds: Dict[Tuple[str, str], PoolFeed] = {}

    def sync(self, config) -> None:
        wanted = {(name, pool.discovery) for name, pool in config.pools.items()
                  if pool.discovery is not None}
        cleared = False
        for key in [k for k in self.feeds if k not in wanted]:
            feed = self.feeds.pop(key)
            feed.disownServiceParent()
            if key[0] not in {name for name, _ in wanted}:
                cleared = self.core.overrides.clearMembers(key[0]) or cleared
        if cleared:
            self.core.rebuild()
            self.core.changed()
        for name, url in sorted(wanted - set(self.feeds)):
            feed = PoolFeed(url, name, self.reactor, self._apply(url))
            self.feeds[(name, url)] = feed
            feed.setServiceParent(self)

    def _apply(self, url: str):
        core = self.core

        def apply(pool, targets):
            if pool not in core.runtime.pools:
                raise ValueError(f"no pool named {pool!r} in service")
            set_members(core, pool, targets, url)
        return apply
