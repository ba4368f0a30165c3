"""
End-to-end failover: three real backends behind the real proxy; one is
killed and restarted while a client keeps sending requests.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time
from typing import List, Optional

from tests.e2e.harness import E2ETestCase, freePorts

#: Probe settings of the test: a target comes back after RISE probes.
INTERVAL = 0.5
RISE = 2

REQUESTS = 2000
KILL_AT = 300
RESTART_AT = 800
#: Pause between requests, so the run spans several probe intervals.
PACE = 0.002
#: Upper bound of the whole loop, whatever happens.
DEADLINE = 60.0


def config(port: int, backends: List[int]) -> str:
    targets = ", ".join(f'"127.0.0.1:{p}"' for p in backends)
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
connect_timeout = 1.0
response_timeout = 5.0
access_log = false

[health]
interval = {INTERVAL}
timeout = 0.4
rise = {RISE}
fall = 2
passive_fail = 2
ejection_time = 1.0

[pools.web]
targets = [{targets}]

[pools.web.health]
path = "/healthz"

[[routes]]
pool = "web"
"""


class FailoverTests(E2ETestCase):
    def startBackend(self, name: str, port: int):
        process = self.start(
            name,
            [sys.executable, "-m", "lbproxy.demo", "--listen",
             f"tcp:{port}:interface=127.0.0.1", "--name", name],
        )
        self.waitForPorts(process, [port])
        return process

    def test_killAndRestart(self) -> None:
        """
        2,000 requests while one of three backends is killed (SIGKILL) and
        later restarted: not one fails, and the restarted backend gets
        traffic again within rise x interval plus one interval.
        """
        proxyPort, *ports = freePorts(4)
        names = ["b1", "b2", "b3"]
        backends = {name: self.startBackend(name, port) for name, port in zip(names, ports)}
        self.startProxy(config(proxyPort, ports), proxyPort)

        failures: List[str] = []
        servedBy: List[Optional[str]] = []
        restartedAt: Optional[float] = None
        returnedAt: Optional[float] = None
        connection = http.client.HTTPConnection("127.0.0.1", proxyPort, timeout=10)
        self.addCleanup(connection.close)
        deadline = time.monotonic() + DEADLINE
        for index in range(REQUESTS):
            if time.monotonic() > deadline:
                self.fail(f"only {index} requests within {DEADLINE}s" + self.diag())
            if index == KILL_AT:
                os.kill(backends["b2"].pid, signal.SIGKILL)
                backends["b2"].popen.wait(timeout=10)
            if index == RESTART_AT:
                backends["b2"] = self.startBackend("b2-again", ports[1])
                restartedAt = time.monotonic()
            try:
                connection.request("GET", f"/r/{index}", headers={"Host": "web"})
                response = connection.getresponse()
                response.read()
                status = response.status
                backend = response.getheader("X-Demo-Backend")
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"request {index}: {e!r}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", proxyPort, timeout=10)
                self.addCleanup(connection.close)
                continue
            if status != 200:
                failures.append(f"request {index}: status {status}")
            servedBy.append(backend)
            if backend == "b2-again" and returnedAt is None:
                returnedAt = time.monotonic()
            time.sleep(PACE)

        self.assertEqual(failures, [], self.diag())
        self.assertIn("b2", servedBy[:KILL_AT])
        afterKill = servedBy[KILL_AT + 20 : RESTART_AT]
        self.assertNotIn("b2", afterKill)
        self.assertIsNotNone(returnedAt, "b2 never got traffic again" + self.diag())
        back = returnedAt - restartedAt
        bound = RISE * INTERVAL + INTERVAL
        self.assertLessEqual(back, bound, f"back in rotation after {back:.2f}s")
        # Printed for the record (trial shows it in the test log).
        print(f"failover: {len(failures)} failed of {REQUESTS}; "
              f"restarted backend back in rotation after {back:.2f}s (bound {bound}s)")
        output = self.proxy.output(tail=None)
        self.assertIn("in pool web DOWN", output)
        self.assertIn("in pool web UP after 2 successful checks", output)
        self.assertNotIn("Unhandled", output)
