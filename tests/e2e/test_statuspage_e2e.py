"""
The live status page in a real browser: the real proxy (C{twistd -n
lbproxy}) with two demo backends and the admin listener, the page open
in headless Chromium over the DevTools protocol (tests/e2e/cdp.py); one
backend is killed and the open page must show it down within a few
seconds, from its event stream alone (the page is not reloaded).

The screenshot of the page after the kill is kept: C{statuspage.png} in
C{$LBPROXY_ARTIFACTS} if set, else in this test's directory under
C{_trial_temp} (the path is printed).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from twisted.trial.unittest import SkipTest

from tests.e2e.cdp import DevTools, chromium_argv, find_chromium, page_socket_url
from tests.e2e.harness import E2ETestCase, freePorts

TOKEN = "e2e-admin-token-0123456789"
#: How soon the page must show a killed backend down.
SHOW_DOWN_WITHIN = 5.0


def config(port: int, admin: int, backends) -> str:
    targets = ", ".join('"127.0.0.1:%d"' % (p,) for p in backends)
    return f"""
[server]
listen = "tcp:{port}:interface=127.0.0.1"
connect_timeout = 1.0
access_log = false

[admin]
listen = "tcp:{admin}:interface=127.0.0.1"
token = "{TOKEN}"

[health]
interval = 0.5
timeout = 0.4
fall = 1
rise = 2

[pools.web]
targets = [{targets}]

[pools.web.health]
path = "/"

[[routes]]
pool = "web"
"""


class StatusPageBrowserTests(E2ETestCase):
    def startBrowser(self, url: str) -> DevTools:
        binary = find_chromium()
        if binary is None:
            raise SkipTest("chromium is not installed (scripts/test installs it)")
        profile = self.workdir / "chromium-profile"
        profile.mkdir()
        self.start("chromium", chromium_argv(binary, profile))
        tools = DevTools(page_socket_url(profile, time.monotonic() + 30))
        self.addCleanup(tools.close)
        tools.navigate(url)
        return tools

    def waitFor(self, tools: DevTools, expression: str, seconds: float):
        deadline = time.monotonic() + seconds
        while True:
            value = tools.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                return value
            time.sleep(0.1)

    def test_killedBackendShownDown(self) -> None:
        """
        Both targets show up; SIGKILL one backend; within a few seconds
        its card on the open page says down (or ejected), the other's up.
        """
        proxyPort, adminPort, port1, port2 = freePorts(4)
        backends = []
        for name, port in (("b1", port1), ("b2", port2)):
            process = self.start(name, [
                sys.executable, "-m", "lbproxy.demo", "--listen",
                f"tcp:{port}:interface=127.0.0.1", "--name", name,
            ])
            self.waitForPorts(process, [port])
            backends.append(process)
        self.startProxy(config(proxyPort, adminPort, [port1, port2]), proxyPort,
                        alsoWaitFor=[adminPort])
        for _ in range(20):
            self.assertEqual(self.curl(proxyPort, "/").status, 200)

        tools = self.startBrowser(f"http://127.0.0.1:{adminPort}/")
        state = "(document.querySelector('.card[data-target=\"127.0.0.1:%d\"]') || {dataset: {}})"\
                ".dataset.state"
        both = self.waitFor(
            tools,
            "[%s, %s].join(',') === 'up,up' && document.getElementById('live').textContent"
            % (state % port1, state % port2),
            15,
        )
        self.assertEqual(both, "live", self.diag())

        killed = backends[1]
        os.kill(killed.pid, signal.SIGKILL)
        killed.popen.wait(timeout=5)
        began = time.monotonic()
        shown = self.waitFor(
            tools, "['down', 'ejected'].indexOf(%s) >= 0 && %s" % (state % port2, state % port2),
            SHOW_DOWN_WITHIN,
        )
        took = time.monotonic() - began
        self.assertIn(shown, ("down", "ejected"),
                      "the page did not show the killed backend down within %ss\n%s"
                      % (SHOW_DOWN_WITHIN, self.diag()))
        self.assertEqual(tools.evaluate(state % port1), "up")
        reason = tools.evaluate(
            "document.querySelector('.card[data-target=\"127.0.0.1:%d\"] .change').textContent"
            % (port2,)
        )
        # Refused, or lost when a probe (or a request) was on its way as
        # the backend died.
        self.assertTrue(
            "connection refused" in reason.lower() or "was lost" in reason.lower(),
            reason,
        )
        # A little traffic after the kill, and two more frames, for the picture.
        for _ in range(10):
            self.curl(proxyPort, "/")
        time.sleep(2.2)
        artifacts = Path(os.environ.get("LBPROXY_ARTIFACTS") or self.workdir)
        artifacts.mkdir(parents=True, exist_ok=True)
        png = tools.screenshot(artifacts / "statuspage.png")
        self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
        sys.stdout.write("\nstatus page: down after %.1fs; screenshot: %s\n"
                         % (took, artifacts / "statuspage.png"))
