"""
Tests for the C{lbproxy} command (L{lbproxy.cli}).
"""

from __future__ import annotations

import io
import sys

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.cli import main, run_argv

GOOD = '[pools.a]\ntargets = ["127.0.0.1:9"]\n[[routes]]\npool = "a"\n'


class CliTests(SynchronousTestCase):
    def run_cli(self, *args, stdin=None):
        out, err = io.StringIO(), io.StringIO()
        execs = []
        if stdin is not None:
            self.patch(sys, "stdin", stdin)
        code = main(list(args), out, err, execv=lambda path, argv: execs.append(argv))
        return code, out.getvalue(), err.getvalue(), execs

    def write(self, text):
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_run(self):
        """
        C{lbproxy run} becomes C{twistd -n --pidfile= lbproxy --config F}.
        """
        code, _, _, [argv] = self.run_cli("run", "--config", "/etc/lbproxy.toml")
        self.assertEqual(argv[0], sys.executable)
        self.assertEqual(
            argv[3:], ["--nodaemon", "--pidfile=", "lbproxy", "--config", "/etc/lbproxy.toml"]
        )
        self.assertEqual(
            run_argv(["--logfile=/var/log/lb.log"], "py")[3:],
            ["--nodaemon", "--pidfile=", "--logfile=/var/log/lb.log", "lbproxy", "--config",
             "config.toml"],
        )

    def test_runBadArgument(self):
        code, _, err, execs = self.run_cli("run", "--daemon")
        self.assertEqual((code, execs), (2, []))
        self.assertIn("unknown argument '--daemon'", err)

    def test_checkGood(self):
        path = self.write(GOOD)
        code, out, err, _ = self.run_cli("check", path)
        self.assertEqual(code, 0)
        self.assertEqual(out, "%s: configuration OK (1 pools, 1 routes, 1 listeners)\n" % (path,))

    def test_checkBad(self):
        path = self.write(GOOD + "[server]\nlisten = 5\n")
        code, out, err, _ = self.run_cli("check", path)
        self.assertEqual(code, 2)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("server.listen", err)

    def test_checkLogPath(self):
        """
        An access log start-up could not open fails the check.
        """
        path = self.write('[server]\naccess_log = "/nonexistent/x.log"\n' + GOOD)
        code, _, err, _ = self.run_cli("check", path)
        self.assertEqual(code, 2)
        self.assertIn("server.access_log: /nonexistent/x.log", err)

    def test_version(self):
        code, out, _, _ = self.run_cli("version")
        self.assertEqual(code, 0)
        self.assertTrue(out.startswith("lbproxy 0.1.0 (Twisted "))

    def test_passwd(self):
        """
        C{lbproxy passwd} hashes a password read from standard input.
        """
        from lbproxy.policy.passwd import parse_hash, verify_password

        code, out, _, _ = self.run_cli("passwd", "--iterations", "10000",
                                       stdin=io.StringIO("s3cret\n"))
        self.assertEqual(code, 0)
        self.assertTrue(verify_password("s3cret", parse_hash(out.strip())))

    def test_usage(self):
        code, _, err, _ = self.run_cli()
        self.assertEqual(code, 2)
        self.assertIn("usage: lbproxy", err)
        code, _, err, _ = self.run_cli("frobnicate")
        self.assertEqual(code, 2)
        self.assertIn("unknown command 'frobnicate'", err)
