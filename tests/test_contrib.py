"""
Tests for what contrib/ and the Dockerfile promise: a systemd unit that
systemd accepts (C{systemd-analyze verify}, where it is installed) with
readiness, reload, the file limit and an unprivileged user, and a
container that runs lbproxy in the foreground as a user other than root.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "contrib" / "lbproxy.service"


def unit():
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str
    parser.read_string(UNIT.read_text())
    return parser


class SystemdUnitTests(SynchronousTestCase):
    def test_settings(self):
        """
        Type=notify (lbproxy sends READY=1), SIGHUP for reload, a high file
        limit, a user of its own with only the capability to bind low ports.
        """
        service = unit()["Service"]
        self.assertEqual(service["Type"], "notify")
        self.assertEqual(service["ExecReload"], "/bin/kill -HUP $MAINPID")
        self.assertGreaterEqual(int(service["LimitNOFILE"]), 65536)
        self.assertNotIn(service["User"], ("root", "0"))
        self.assertEqual(service["AmbientCapabilities"], "CAP_NET_BIND_SERVICE")
        self.assertEqual(service["CapabilityBoundingSet"], "CAP_NET_BIND_SERVICE")
        self.assertEqual(service["NoNewPrivileges"], "true")
        self.assertTrue(service["ExecStart"].endswith(
            "lbproxy run --config /etc/lbproxy/config.toml"))
        self.assertTrue(service["ExecStartPre"].endswith(
            "lbproxy check /etc/lbproxy/config.toml"))

    def test_verify(self):
        """
        C{systemd-analyze verify} accepts the unit (its commands pointed
        at this checkout's, which exist here).
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd-analyze is not installed")
        lbproxy = Path(sys.executable).parent / "lbproxy"
        if not lbproxy.exists():
            raise SkipTest("the lbproxy console script is not installed")
        text = (UNIT.read_text()
                .replace("/opt/lbproxy/bin/lbproxy", str(lbproxy))
                .replace("/etc/lbproxy/config.toml", str(ROOT / "config.toml"))
                .replace("WorkingDirectory=/etc/lbproxy", "WorkingDirectory=%s" % (ROOT,)))
        directory = Path(self.mktemp())
        directory.mkdir()
        path = directory / "lbproxy.service"
        path.write_text(text)
        result = subprocess.run(
            [analyze, "verify", "--man=no", str(path)], capture_output=True, timeout=60
        )
        output = (result.stdout + result.stderr).decode("utf-8", "replace")
        if result.returncode != 0 and "Failed to" in output and "bus" in output.lower():
            raise SkipTest("systemd-analyze cannot run here: " + output[:200])
        self.assertEqual((result.returncode, output), (0, ""))


class DockerfileTests(SynchronousTestCase):
    def test_foregroundUnprivileged(self):
        lines = [l.strip() for l in (ROOT / "Dockerfile").read_text().splitlines()
                 if l.strip() and not l.startswith("#")]
        users = [l.split()[1] for l in lines if l.startswith("USER ")]
        self.assertEqual(users, ["lbproxy"])
        self.assertIn('ENTRYPOINT ["lbproxy"]', lines)
        self.assertIn('CMD ["run", "--config", "/etc/lbproxy/config.toml"]', lines)
