# -*- test-case-name: tests.test_workers -*-
"""
In a worker: end with the main process.

A worker whose main process died (SIGKILL, a crash, the OOM killer) would
go on serving with parent 1, without supervision or health states, and
keep the port bound so that a new lbproxy cannot start. Two ways out:

  - On Linux the kernel sends the worker SIGTERM when its parent dies
    (C{prctl(PR_SET_PDEATHSIG)}, L{watch_parent}), asked for early in
    the worker; the parent's pid is checked right after, in case it died
    before the request.
  - Everywhere, the end of the health pipe from the main process (see
    L{lbproxy.app.workers.HealthFeed}) means the main process is gone,
    and the worker stops.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Callable, Optional

from twisted.logger import Logger

log = Logger()

#: From <linux/prctl.h>.
PR_SET_PDEATHSIG = 1


def _libc_prctl() -> Callable[..., int]:
    """
    The C library's C{prctl}, through C{ctypes}.
    """
    import ctypes
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return libc.prctl


def watch_parent(
    parentPid: int,
    prctl: Optional[Callable[..., int]] = None,
    getppid: Callable[[], int] = os.getppid,
    platform: str = sys.platform,
) -> bool:
    """
    Ask the kernel (on Linux) to send this process SIGTERM when its parent
    dies, then check that the parent is still C{parentPid}.

    @param parentPid: The main process's pid, as it said when it started
        this worker.
    @param prctl: The C library's C{prctl} (L{_libc_prctl} if L{None}).
    @return: Whether the parent is still there; L{False} if it died before
        the request took effect (this process was re-parented), and the
        worker should exit at once.
    """
    if platform.startswith("linux"):
        try:
            if prctl is None:
                prctl = _libc_prctl()
            if prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0) != 0:
                raise OSError("prctl(PR_SET_PDEATHSIG) failed")
        except (OSError, AttributeError) as e:
            # The health pipe's end still stops the worker.
            log.warn("cannot ask to end with the main process: {e}", e=e)
    return getppid() == parentPid


def stop_reactor(reactor) -> None:
    """
    Stop C{reactor} (the worker) because the main process is gone, unless
    it is stopping already.
    """
    from twisted.internet.error import ReactorNotRunning

    log.warn("the main process is gone: this worker stops")
    try:
        reactor.stop()
    except ReactorNotRunning:
        pass
