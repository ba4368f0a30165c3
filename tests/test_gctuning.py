"""
Tests for L{lbproxy.app.gctuning}.
"""

from __future__ import annotations

import gc

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.gctuning import PYPY_NURSERY, freeze_startup_objects, pypy_restart


class FakeGC:
    def __init__(self) -> None:
        self.calls = []

    def collect(self) -> int:
        self.calls.append("collect")
        return 0

    def freeze(self) -> None:
        self.calls.append("freeze")


class FreezeTests(SynchronousTestCase):
    def test_collectThenFreeze(self) -> None:
        """
        Garbage is collected first, so that it is not frozen with the rest.
        """
        fake = FakeGC()
        self.assertTrue(freeze_startup_objects(fake))
        self.assertEqual(fake.calls, ["collect", "freeze"])

    def test_noFreeze(self) -> None:
        """
        Without C{gc.freeze} (PyPy) nothing is done.
        """

        class NoFreeze:
            def collect(self) -> int:
                raise AssertionError("not expected")

        self.assertFalse(freeze_startup_objects(NoFreeze()))

    def test_real(self) -> None:
        """
        On CPython the objects alive are moved to the permanent generation.
        """
        if not hasattr(gc, "freeze"):
            raise self.skipTest("no gc.freeze here")
        self.addCleanup(gc.unfreeze)
        self.assertTrue(freeze_startup_objects())
        self.assertGreater(gc.get_freeze_count(), 0)


def ALL(path: str) -> bool:
    return True


class PyPyRestartTests(SynchronousTestCase):
    def test_notPyPy(self) -> None:
        self.assertIsNone(pypy_restart(["/v/bin/twistd", "-n"], "/v/bin/python", {}, False, ALL))

    def test_alreadySet(self) -> None:
        """
        The operator's own value is kept: no restart.
        """
        self.assertIsNone(
            pypy_restart(["/v/bin/twistd"], "/v/bin/pypy", {"PYPY_GC_NURSERY": "8MB"}, True, ALL)
        )

    def test_script(self) -> None:
        """
        Started as the twistd script: the same script and arguments, with
        the nursery size added to the environment.
        """
        executable, args, env = pypy_restart(
            ["/v/bin/twistd", "-n", "lbproxy", "--config", "c.toml"], "/v/bin/pypy",
            {"PATH": "/bin"}, True, ALL,
        )
        self.assertEqual(executable, "/v/bin/pypy")
        self.assertEqual(args, ["/v/bin/pypy", "/v/bin/twistd", "-n", "lbproxy", "--config", "c.toml"])
        self.assertEqual(env, {"PATH": "/bin", "PYPY_GC_NURSERY": PYPY_NURSERY})

    def test_module(self) -> None:
        """
        Started as C{python -m twisted}: again with C{-m twisted}.
        """
        executable, args, env = pypy_restart(
            ["/v/lib/site-packages/twisted/__main__.py", "lbproxy"], "/v/bin/pypy", {}, True, ALL
        )
        self.assertEqual(args, ["/v/bin/pypy", "-m", "twisted", "lbproxy"])

    def test_otherProgram(self) -> None:
        """
        A process that is not twistd (trial running these tests) is never
        restarted.
        """
        for script in ["/v/bin/trial", "/v/lib/site-packages/twisted/trial/__main__.py"]:
            self.assertIsNone(pypy_restart([script, "tests"], "/v/bin/pypy", {}, True, ALL))

    def test_notAFile(self) -> None:
        """
        twistd started from C{python -c} (its argv[0] set to "twistd", not a
        file): it cannot be started again the same way, so it is not.
        """
        self.assertIsNone(
            pypy_restart(["twistd", "lbproxy"], "/v/bin/pypy", {}, True, lambda path: False)
        )
