# -*- test-case-name: tests.test_generations -*-
"""
Generations of workers: how the main process of C{workers > 1} applies a
reload that changes the listeners (C{server.listen}, C{tls.listen}), the
way nginx does.

  1. The main process binds the sockets of the listeners the file adds,
     keeping those of the listeners it keeps (all or nothing: one that
     cannot be bound rejects the reload, naming it, and closes the others).
  2. It starts a new generation of N workers on the new set of sockets,
     with the new file's text (L{GenerationSupervisor.startGeneration}).
     Kept sockets are shared by both generations meanwhile, so no
     connection is refused.
  3. Once every new worker is ready, the reload is applied in the main
     process and the old generation is retired (L{Handover.commit}):
     SIGTERM, so its workers stop accepting and drain their connections
     (C{drain_timeout}; SIGKILL after the supervisor's stop grace), and
     the main process closes its copies of the removed sockets.
  4. If a new worker exits before it is ready, or they are not all ready
     within L{READY_TIMEOUT}, the new generation is stopped, the old one
     stays in service with its sockets, and the reload is rejected.

Supervision (restarting a worker that crashed) follows the generation in
service: a worker of a retired generation is not restarted.
"""

from __future__ import annotations

import socket
from typing import Callable, Dict, List, Optional, Sequence, Set

from twisted.internet import defer
from twisted.logger import Logger

from lbproxy.app.listeners import ListenerFailed
from lbproxy.app.workers import WorkerSupervisor, bind_listeners

__all__ = ["GenerationFailed", "GenerationSupervisor", "Handover", "READY_TIMEOUT",
           "new_generation"]

log = Logger()

#: Seconds a new generation's workers get to be ready.
READY_TIMEOUT = 30.0


class GenerationFailed(Exception):
    """
    A new generation of workers did not start; the old one stays.
    """


class _Starting:
    """
    A generation being started, and what to go back to if it fails.
    """

    def __init__(self, listeners, configText, workers: Dict[int, object]) -> None:
        self.previousListeners = listeners
        self.previousText = configText
        self.previousWorkers = workers
        self.done: defer.Deferred = defer.Deferred()
        self.timer = None
        self.workers: Dict[int, object] = {}


class GenerationSupervisor(WorkerSupervisor):
    """
    A L{WorkerSupervisor} that can replace all of its workers by a new
    generation on other sockets, with another configuration text.

    @ivar retiring: the workers of older generations, still draining.
    @ivar generation: how many generations were started (the first is 1).
    """

    def __init__(self, *args, readyTimeout: float = READY_TIMEOUT, **kwargs) -> None:
        WorkerSupervisor.__init__(self, *args, **kwargs)
        self.retiring: Set = set()
        self.generation = 1
        self._readyTimeout = readyTimeout
        self._starting: Optional[_Starting] = None

    def startGeneration(self, listeners: List[List[socket.socket]], configText: str):
        """
        Start C{count} new workers on C{listeners} with C{configText}; the
        current ones go on serving until L{retire}.

        @param listeners: for each address, its sockets (as at start).
        @return: a L{Deferred} firing with the old generation's workers
            once every new one is ready, or failing with
            L{GenerationFailed} (the new ones are stopped, the old ones
            stay current).
        """
        if self._starting is not None:
            return defer.fail(GenerationFailed("a new generation is starting already"))
        starting = self._starting = _Starting(
            self._listeners, self._configText, dict(self.workers)
        )
        # A restart due for a crashed worker of the old generation is now
        # the new generation's start.
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        self._listeners = listeners
        self._configText = lambda: configText
        self.generation += 1
        for index in range(self.count):
            self._start(index)
            starting.workers[index] = self.workers[index]
        starting.timer = self._clock.callLater(
            self._readyTimeout, self._failed,
            f"the new workers were not ready within {self._readyTimeout:g}s",
        )
        log.info("generation {generation}: {count} new worker(s) starting",
                 generation=self.generation, count=self.count)
        return starting.done

    def _workerReady(self, worker) -> None:
        starting = self._starting
        if starting is None or starting.workers.get(worker.index) is not worker:
            return
        if all(w.ready for w in starting.workers.values()):
            self._starting = None
            starting.timer.cancel()
            starting.done.callback(list(starting.previousWorkers.values()))

    def _failed(self, reason: str) -> None:
        """
        The new generation did not start: stop it, put the old one back
        (restarting those of its workers that ended meanwhile).
        """
        starting, self._starting = self._starting, None
        if starting is None:
            return
        if starting.timer.active():
            starting.timer.cancel()
        self.generation -= 1
        self._listeners = starting.previousListeners
        self._configText = starting.previousText
        new = [w for w in starting.workers.values() if self.workers.get(w.index) is w]
        self.workers = {
            index: w for index, w in starting.previousWorkers.items()
            if w not in self.retiring and not w.ended.called
        }
        self.retire(new)
        for index in range(self.count):
            if index not in self.workers and not self._stopping:
                self._start(index)
        log.error("new generation of workers failed: {reason}; the previous one stays",
                  reason=reason)
        starting.done.errback(GenerationFailed(reason))

    def retire(self, workers: Sequence) -> None:
        """
        Stop C{workers} gracefully: SIGTERM (they stop accepting and
        drain), SIGKILL after the stop grace.
        """
        for worker in workers:
            if worker.ended.called:
                continue
            self.retiring.add(worker)
            worker.signal("TERM")
            timer = self._clock.callLater(self._stopGrace, worker.signal, "KILL")
            worker.ended.addBoth(_cancel(timer))

    def _workerEnded(self, worker, reason) -> None:
        if worker in self.retiring:
            self.retiring.discard(worker)
            log.info("worker {index} (pid {pid}) of a previous generation exited",
                     index=worker.index, pid=worker.pid)
            return
        starting = self._starting
        if starting is not None and starting.workers.get(worker.index) is worker:
            self._failed(f"worker {worker.index} exited before it was ready "
                         f"({str(reason).strip().rstrip('.')})")
            if worker in self.retiring:
                self.retiring.discard(worker)
            return
        WorkerSupervisor._workerEnded(self, worker, reason)

    def broadcast(self, line: bytes) -> None:
        """
        Send a line to every worker: the current ones, those a generation
        being started replaces, and those draining.
        """
        workers = set(self.workers.values()) | self.retiring
        if self._starting is not None:
            workers |= set(self._starting.previousWorkers.values())
        for worker in workers:
            if not worker.ended.called:
                worker.send(line)

    def stopService(self):
        if self._starting is not None:
            self._stopping = True  # (no worker of the old one restarted now)
            self._failed("the main process is stopping")
        # (Retiring workers had their SIGTERM, and SIGKILL is due for them.)
        retiring = list(self.retiring)
        stopped = WorkerSupervisor.stopService(self)
        return defer.DeferredList([stopped] + [w.ended for w in retiring])


def _cancel(timer) -> Callable:
    def cancel(result):
        if timer.active():
            timer.cancel()
        return result

    return cancel


class Handover:
    """
    A new generation of workers is ready: L{commit} retires the old one.

    @ivar opened: the endpoint strings of the sockets bound for it.
    """

    def __init__(self, opened: List[str], commit: Callable[[], List[str]]) -> None:
        self.opened = opened
        self._commit = commit

    def commit(self) -> List[str]:
        """
        @return: the endpoint strings of the sockets closed.
        """
        return self._commit()


def new_generation(
    supervisor: GenerationSupervisor,
    sockets,
    descriptions: Sequence[str],
    tlsListen: Sequence[str],
    text: str,
    bind: Callable[..., List[socket.socket]] = bind_listeners,
):
    """
    Bind what C{descriptions} adds to C{sockets}, then start a new
    generation of workers on the new set.

    @param sockets: the main process's L{lbproxy.app.sockets.ListeningSockets}
        (C{descriptions} and C{sockets}, in step); updated by the commit.
    @param descriptions: every listener of the new file, in the order a
        worker gets them (L{lbproxy.app.reload.all_listeners}).
    @param tlsListen: those of C{tls.listen} (to name the key on failure).
    @param bind: L{bind_listeners}.
    @return: a L{Deferred} of the L{Handover}, or failing with
        L{ListenerFailed} (a socket that cannot be bound, or a generation
        that did not start), every socket it bound closed again.
    """
    current = dict(zip(sockets.descriptions, sockets.sockets))
    bound: Dict[str, List[socket.socket]] = {}

    def closeBound() -> None:
        for group in bound.values():
            for sock in group:
                sock.close()

    for description in descriptions:
        if description in current or description in bound:
            continue
        key = "tls.listen" if description in tlsListen else "server.listen"
        try:
            bound[description] = bind(description, supervisor.count, sockets.backlog)
        except (OSError, ValueError) as e:
            closeBound()
            reason = getattr(e, "strerror", None) or str(e)
            return defer.fail(ListenerFailed(f"cannot listen on {description}: {reason}", key))
    listeners = [current.get(d) or bound[d] for d in descriptions]

    def started(previous) -> Handover:
        def commit() -> List[str]:
            supervisor.retire(previous)
            removed = [d for d in sockets.descriptions if d not in descriptions]
            for description in removed:
                for sock in current[description]:
                    sock.close()
            sockets.descriptions = list(descriptions)
            sockets.sockets = listeners
            return removed

        return Handover(list(bound), commit)

    def failed(failure):
        failure.trap(GenerationFailed)
        closeBound()
        raise ListenerFailed(
            f"the new workers did not start: {failure.value}", "server.listen"
        )

    return supervisor.startGeneration(listeners, text).addCallbacks(started, failed)
