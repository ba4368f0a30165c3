# -*- test-case-name: tests.test_gctuning -*-
"""
Garbage collection settings for a long-running proxy.

CPython
=======

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
C{gc.unfreeze()} and freeze again.

PyPy
====

PyPy has no C{gc.freeze}; its young generation (the I{nursery}) is sized
from the CPU cache, 1 MB on the development machine. A proxy keeps every
request in flight alive across several reactor turns, so with a small
nursery they are copied to the old generation, which then needs major
collections: 16,000 req/s at 30 ms p99. With C{PYPY_GC_NURSERY=64MB} the
same run gave 22,000-30,000 req/s at 3-4 ms p99 (16 MB and 32 MB were
in between, 128 MB no better). The size can only be set by that
environment variable before PyPy starts, so L{pypy_restart} gives the
command to start the same C{twistd} again with it, when the operator has
not set it (their value is always kept).
"""

from __future__ import annotations

import gc as _gc
import os
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

#: The nursery size lbproxy starts PyPy with, unless told otherwise.
PYPY_NURSERY = "64MB"


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


def pypy_restart(
    argv: Sequence[str],
    executable: str,
    environ: Mapping[str, str],
    isPyPy: bool,
    isfile: Callable[[str], bool] = os.path.isfile,
) -> Optional[Tuple[str, List[str], Dict[str, str]]]:
    """
    The command that starts this process again under PyPy with
    C{PYPY_GC_NURSERY} set, or L{None} when there is nothing to do (not
    PyPy, or the variable is set already).

    @param argv: C{sys.argv}: the C{twistd} script and its arguments
        (C{.../twisted/__main__.py} when started as C{python -m twisted});
        any other program is never restarted.
    @param executable: C{sys.executable}.
    @param isfile: C{os.path.isfile}: a script that is not a file (twistd
        started some other way) cannot be started again, so it is not.
    @return: C{(executable, arguments, environment)} for C{os.execve}.
    """
    if not isPyPy or "PYPY_GC_NURSERY" in environ or not argv or not isfile(argv[0]):
        return None
    env = dict(environ)
    env["PYPY_GC_NURSERY"] = PYPY_NURSERY
    script = argv[0]
    if os.path.basename(script) == "__main__.py" and os.path.basename(
        os.path.dirname(script)
    ) == "twisted":
        args = [executable, "-m", "twisted"] + list(argv[1:])
    elif os.path.basename(script).startswith("twistd"):
        args = [executable, script] + list(argv[1:])
    else:
        # Not twistd (a test runner, say): never restart it.
        return None
    return executable, args, env
