# -*- test-case-name: tests.test_reload -*-
"""
C{[server] watch = true}: reload when the configuration file changes.

The file is read every L{INTERVAL} seconds.  A reload starts once its
text differs from the text last loaded I{and} read the same twice in a
row, so that an editor still writing it is not caught half-way; a text
rejected once is not tried again until it changes.  Reading a small file
twice a second costs nothing worth measuring, and unlike inotify it works
the same everywhere (and through symlink swaps, as Kubernetes ConfigMaps
do).
"""

from __future__ import annotations

import hashlib
from typing import Callable, Optional

from twisted.application.internet import TimerService

__all__ = ["FileWatch", "INTERVAL"]

#: Seconds between two looks at the file.
INTERVAL = 0.5


def _digest(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).digest()
    except OSError:
        return None


class FileWatch(TimerService):
    """
    Calls C{reload("file change")} when the file's text changes.
    """

    def __init__(
        self,
        path: str,
        reload: Callable[[str], object],
        clock,
        digest: Callable[[str], Optional[bytes]] = _digest,
    ) -> None:
        TimerService.__init__(self, INTERVAL, self.check)
        self.clock = clock
        self._path = path
        self._reload = reload
        self._digestOf = digest
        #: The text last loaded (or tried).
        self.loaded = digest(path)
        self._seen = self.loaded

    def check(self) -> None:
        current = self._digestOf(self._path)
        seen, self._seen = self._seen, current
        if current is None or current == self.loaded or current != seen:
            return
        self.loaded = current
        self._reload("file change")
