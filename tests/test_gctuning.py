"""
Tests for L{lbproxy.gctuning}.
"""

from __future__ import annotations

import gc

from twisted.trial.unittest import SynchronousTestCase

from lbproxy.gctuning import freeze_startup_objects


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
