"""
A fleet end to end: real etcd (Debian's etcd-server) followed by two
proxies, including etcd killed and restarted and a compaction past a
stopped proxy's revision; a real WebSocket agent feeding a pool; a real
redis-server shared by two proxies' rate limits.  Every process runs on
free loopback ports with its data in the test's directory and is stopped
by PID (L{bench.harness.Processes}).
"""

from __future__ import annotations

import json
import os
import signal
import time
import shutil
import subprocess
import sys

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from bench.fleet import (
    PREFIX, Etcd, Proxy, demos, feed, proxy_config, propagation, recovery, routes_to,
    shared_limit, wait_until,
)
from bench.harness import Processes
from tests.e2e.harness import REPO_ROOT, childEnvironment


def need(program: str) -> None:
    if shutil.which(program) is None:
        raise SkipTest(f"{program} is not installed (scripts/test installs it)")


class FleetTestCase(SynchronousTestCase):
    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.makedirs(self.directory)
        self.processes = Processes(self.directory)
        self.addCleanup(self.processes.stop_all)
        self.ports = demos(self.processes, ["alpha", "beta"])

    def logs(self) -> str:
        return "\n".join(p.tail(4000) for p in self.processes._started)


class EtcdFleetTests(FleetTestCase):
    def test_followers(self):
        """
        Seeded by C{python -m lbproxy.etcd push}; two proxies follow every
        write; a bad value is logged with its key and changes nothing; after
        a kill and restart of etcd and a compaction past a stopped proxy's
        revision, with writes going on, both end with etcd's state.
        """
        need("etcd")
        etcd = Etcd(self.processes, self.directory)
        etcd.start()
        seed = f"{self.directory}/seed.toml"
        with open(seed, "w") as f:
            f.write(proxy_config(1, 2, etcd.url, [self.ports["alpha"]]))
        pushed = subprocess.run([sys.executable, "-m", "lbproxy.etcd", "push", seed],
                                capture_output=True, text=True, timeout=30, cwd=str(REPO_ROOT),
                                env=childEnvironment())
        self.assertEqual(pushed.returncode, 0, pushed.stderr)
        self.assertIn(f"{PREFIX}/pools/web", pushed.stdout)
        self.assertEqual(etcd.pools(), {"web": [f"127.0.0.1:{self.ports['alpha']}"]})
        # The file says beta; etcd (seeded) says alpha, and wins.
        proxies = [Proxy(self.processes, self.directory, f"proxy{i}",
                         lambda port, admin: proxy_config(port, admin, etcd.url,
                                                          [self.ports["beta"]]))
                   for i in range(2)]
        for proxy in proxies:
            wait_until(lambda: routes_to(proxy, "alpha"), 10, 0.05)
        times = propagation(etcd, proxies, self.ports, 10)
        self.assertLess(max(times), 5.0)
        current = "beta" if len(times) % 2 else "alpha"
        etcd.put(f"{PREFIX}/pools/web", {"targets": ["not an address"]})
        wait_until(lambda: all("etcd /lbproxy/pools/web" in p.log() for p in proxies), 10, 0.05)
        self.assertTrue(all(routes_to(p, current) for p in proxies), self.logs())
        # Until it is fixed, every change from etcd is refused with it.
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['beta']}"]})
        for proxy in proxies:
            wait_until(lambda: routes_to(proxy, "beta"), 10, 0.05)
        result = recovery(etcd, proxies, self.ports)
        self.assertEqual(result["lost_updates"], {"proxy0": 0, "proxy1": 0},
                         f"{json.dumps(result)}\n{self.logs()}")
        self.assertGreater(result["write_retries_while_etcd_down"], 0)
        self.assertTrue(all(p.get()[0] == 200 for p in proxies))


    def test_authentication(self):
        """
        With C{user} and C{password}, a proxy follows an etcd that
        requires authentication.
        """
        need("etcd")
        etcd = Etcd(self.processes, self.directory)
        etcd.start()
        etcd.enable_auth("fleet-root-password")
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['alpha']}"]})
        proxy = Proxy(self.processes, self.directory, "authproxy", lambda port, admin: (
            proxy_config(port, admin, etcd.url, [self.ports["beta"]])
            + 'user = "root"\npassword = "fleet-root-password"\n'))
        wait_until(lambda: routes_to(proxy, "alpha"), 10, 0.05)
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['beta']}"]})
        wait_until(lambda: routes_to(proxy, "beta"), 10, 0.01)
        self.assertNotIn("fleet-root-password", proxy.log())


    def test_workers(self):
        """
        With C{workers = 2} the main process follows etcd and its workers
        route by it, a worker restarted later too.
        """
        need("etcd")
        etcd = Etcd(self.processes, self.directory)
        etcd.start()
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['alpha']}"]})
        proxy = Proxy(self.processes, self.directory, "workersproxy", lambda port, admin: (
            proxy_config(port, admin, etcd.url, [self.ports["beta"]]).replace(
                "[server]\n", "[server]\nworkers = 2\n")))

        def everyWorker(name):
            # New connections, spread over the workers by the kernel.
            for _ in range(12):
                client = Proxy.__new__(Proxy)
                client.port, client._connection = proxy.port, None
                if client.get()[1] != name:
                    return False
            return True

        # The file says beta: alpha comes from etcd, through the main process.
        wait_until(lambda: everyWorker("alpha"), 15, 0.05)
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['beta']}"]})
        wait_until(lambda: everyWorker("beta"), 10, 0.02)
        etcd.put(f"{PREFIX}/pools/web", {"targets": [f"127.0.0.1:{self.ports['alpha']}"]})
        wait_until(lambda: everyWorker("alpha"), 10, 0.02)

        def workers():
            return set(subprocess.run(["pgrep", "-P", str(proxy.started.pid)],
                                      capture_output=True, text=True).stdout.split())

        before = workers()
        self.assertEqual(len(before), 2, proxy.log())
        os.kill(int(sorted(before)[0]), signal.SIGKILL)
        wait_until(lambda: len(workers()) == 2 and workers() != before, 15, 0.05)
        # The restarted worker gets etcd's keys with its first messages.
        time.sleep(1.0)
        for _ in range(5):
            self.assertTrue(everyWorker("alpha"), proxy.log())


class FeedTests(FleetTestCase):
    def test_agent(self):
        """
        Targets added and removed through the agent reach traffic; a
        malformed message changes nothing; the targets stay while the agent
        is away, and the proxy reconnects when it is back.
        """
        result = feed(self.processes, self.directory, self.ports)
        self.assertLess(result["added_reaches_traffic_s"], 5)
        self.assertLess(result["removed_leaves_traffic_s"], 5)
        self.assertTrue(result["malformed_ignored"], self.logs())
        self.assertTrue(result["targets_kept_while_agent_away"])
        self.assertLess(result["reconnected_after_agent_back_s"], 40)


class SharedLimitTests(FleetTestCase):
    def test_twoProxiesOneLimit(self):
        """
        Two proxies with C{rate = 10} shared through Redis let about 10
        requests a second through together; with Redis stopped every
        request is still answered (local buckets), the fallback logged once
        per proxy.
        """
        need("redis-server")
        result = shared_limit(self.processes, self.directory, self.ports, 10, 3.0, count=2)
        for allowed in result["allowed_per_second"]:
            self.assertTrue(8 <= allowed <= 12, json.dumps(
                {k: v for k, v in result.items() if k != "proxies"}))
        statuses = result["after_redis_stopped"]
        self.assertEqual(set(statuses) - {200, 429}, set(), statuses)
        self.assertGreater(statuses.get(200, 0), 0)
        self.assertEqual(result["fallback_logged"], [1, 1])
