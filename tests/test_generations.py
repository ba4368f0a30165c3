"""
Generations of workers (L{lbproxy.app.generations}), in memory: a fake
spawnProcess, a Clock, fake sockets; and the main process's reload that
changes the listeners through them (L{lbproxy.app.reload.Reloader}).
"""

from __future__ import annotations

from twisted.internet.error import ProcessDone, ProcessTerminated
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from lbproxy.app.generations import GenerationFailed, GenerationSupervisor, new_generation
from lbproxy.app.reload import Reloader, all_listeners, parse_text
from lbproxy.app.workers import FIRST_LISTEN_FD, READY_FD
from lbproxy.testing import ProxyHarness
from tests.test_reload import BASE
from tests.test_workers import FakeSpawner


class FakeSocket:
    def __init__(self, name: str, fd: int) -> None:
        self.name = name
        self.fd = fd
        self.closed = False

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        self.closed = True


class FakeSockets:
    """
    L{lbproxy.app.sockets.ListeningSockets}' state: descriptions and the
    sockets of each.
    """

    def __init__(self, descriptions, sockets) -> None:
        self.descriptions = list(descriptions)
        self.sockets = sockets
        self.backlog = 511


class Binder:
    """
    L{lbproxy.app.workers.bind_listeners}: one fake socket per worker, or
    an error for the descriptions in C{refuse}.
    """

    def __init__(self) -> None:
        self.refuse = set()
        self.bound = []
        self.fd = 50

    def __call__(self, description, count, backlog):
        if description in self.refuse:
            raise OSError(98, "Address already in use")
        group = []
        for _ in range(count):
            self.fd += 1
            group.append(FakeSocket(description, self.fd))
        self.bound.append(group)
        return group


class GenerationTestCase(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.spawn = FakeSpawner()
        self.first = [FakeSocket("tcp:8080", 10), FakeSocket("tcp:8080", 11)]
        self.sockets = FakeSockets(["tcp:8080"], [self.first])
        self.text = "first"
        self.supervisor = GenerationSupervisor(
            2, ["python", "-c", "run"], self.sockets.sockets, self.clock, self.spawn,
            env={}, getpid=lambda: 1, stopGrace=40.0, configText=lambda: self.text,
            readyTimeout=30.0,
        )
        self.supervisor.startService()
        self.old = dict(self.supervisor.workers)
        for worker in self.old.values():
            self.ready(worker)
        self.bind = Binder()

    def ready(self, worker) -> None:
        worker.childDataReceived(READY_FD, b"ready\n")

    def end(self, worker, reason=None) -> None:
        worker.processEnded(Failure(reason or ProcessDone(0)))

    def generation(self, descriptions, text="second"):
        return new_generation(self.supervisor, self.sockets, descriptions, (), text,
                              bind=self.bind)


class GenerationTests(GenerationTestCase):
    def test_handover(self):
        """
        Moving the listener: the new socket is bound, N new workers start
        on it with the new text while the old ones serve on; once all are
        ready the handover retires the old ones (SIGTERM) and closes the
        removed socket.
        """
        d = self.generation(["tcp:9090"])
        self.assertNoResult(d)
        self.assertEqual(len(self.spawn.calls), 4)
        new = dict(self.supervisor.workers)
        self.assertEqual(set(new.values()) & set(self.old.values()), set())
        (group,) = self.bind.bound
        for index, (protocol, _, args, childFDs, process) in enumerate(self.spawn.calls[2:]):
            self.assertEqual(childFDs[FIRST_LISTEN_FD], group[index].fileno())
            self.assertIn((FIRST_LISTEN_FD + 1, b"second"), process.written)
        self.ready(new[0])
        self.assertNoResult(d)
        self.assertEqual([w.transport.signals for w in self.old.values()], [[], []])
        self.ready(new[1])
        handover = self.successResultOf(d)
        self.assertEqual(handover.opened, ["tcp:9090"])
        self.assertEqual([w.transport.signals for w in self.old.values()], [[], []])
        self.assertEqual(handover.commit(), ["tcp:8080"])
        self.assertEqual([w.transport.signals for w in self.old.values()], [["TERM"], ["TERM"]])
        self.assertTrue(all(s.closed for s in self.first))
        self.assertFalse(any(s.closed for s in group))
        self.assertEqual(self.sockets.descriptions, ["tcp:9090"])
        self.assertEqual(self.sockets.sockets, [group])

        # The old ones drain and exit: they are not restarted.  One that
        # does not exit is killed after the stop grace.
        self.end(self.old[0])
        self.clock.advance(40)
        self.assertEqual(self.old[1].transport.signals, ["TERM", "KILL"])
        self.end(self.old[1], ProcessTerminated(signal=9))
        self.clock.advance(100)
        self.assertEqual(len(self.spawn.calls), 4)
        self.assertEqual(self.supervisor.retiring, set())
        self.assertEqual(self.supervisor.workers, new)

    def test_keptSocketsShared(self):
        """
        A listener kept is served by both generations from the same
        sockets, which stay open; only the added one is bound.
        """
        d = self.generation(["tcp:8080", "tcp:9090"])
        for worker in list(self.supervisor.workers.values()):
            self.ready(worker)
        childFDs = self.spawn.calls[3][3]
        self.assertEqual(childFDs[FIRST_LISTEN_FD], self.first[1].fileno())
        self.assertEqual(self.successResultOf(d).commit(), [])
        self.assertFalse(any(s.closed for s in self.first))
        self.assertEqual(len(self.bind.bound), 1)

    def test_supervisionFollows(self):
        """
        After the handover, a crashed worker of the new generation is
        restarted on the new sockets with the new text.
        """
        d = self.generation(["tcp:9090"])
        new = dict(self.supervisor.workers)
        for worker in new.values():
            self.ready(worker)
        self.successResultOf(d).commit()
        self.end(new[1], ProcessTerminated(exitCode=1))
        self.clock.advance(1)
        protocol, _, args, childFDs, process = self.spawn.calls[-1]
        self.assertEqual(len(self.spawn.calls), 5)
        self.assertEqual(childFDs[FIRST_LISTEN_FD], self.bind.bound[0][1].fileno())
        self.assertIn((FIRST_LISTEN_FD + 1, b"second"), process.written)
        self.assertIs(self.supervisor.workers[1], protocol)

    def test_bindFails(self):
        """
        A socket that cannot be bound: those bound are closed, no worker
        is started, the key is named.
        """
        self.bind.refuse.add("tcp:9091")
        failure = self.failureResultOf(self.generation(["tcp:9090", "tcp:9091"]))
        self.assertIn("cannot listen on tcp:9091: Address already in use", str(failure.value))
        self.assertEqual(failure.value.key, "server.listen")
        self.assertTrue(all(s.closed for s in self.bind.bound[0]))
        self.assertEqual(len(self.spawn.calls), 2)
        self.assertEqual(self.supervisor.workers, self.old)

    def test_newWorkerExits(self):
        """
        A new worker that exits before it is ready fails the generation:
        the other new one is stopped, the old ones stay current (and are
        supervised again), the sockets bound for it are closed.
        """
        d = self.generation(["tcp:9090"])
        new = dict(self.supervisor.workers)
        self.ready(new[0])
        self.end(new[1], ProcessTerminated(exitCode=1))
        failure = self.failureResultOf(d)
        self.assertIn("the new workers did not start: worker 1 exited", str(failure.value))
        self.assertEqual(new[0].transport.signals, ["TERM"])
        self.assertEqual(self.supervisor.workers, self.old)
        self.assertTrue(all(s.closed for s in self.bind.bound[0]))
        self.assertFalse(any(s.closed for s in self.first))
        self.end(new[0])
        self.end(self.old[0], ProcessTerminated(exitCode=1))
        self.clock.advance(1)
        protocol, _, args, childFDs, process = self.spawn.calls[-1]
        self.assertEqual(childFDs[FIRST_LISTEN_FD], self.first[0].fileno())
        self.assertIn((FIRST_LISTEN_FD + 1, b"first"), process.written)

    def test_notReadyInTime(self):
        """
        New workers not all ready within the ready timeout: the generation
        fails the same way.
        """
        d = self.generation(["tcp:9090"])
        new = dict(self.supervisor.workers)
        self.ready(new[0])
        self.clock.advance(30)
        self.assertIn("not ready within 30s", str(self.failureResultOf(d).value))
        self.assertEqual([w.transport.signals for w in new.values()], [["TERM"], ["TERM"]])
        self.assertEqual(self.supervisor.workers, self.old)

    def test_oneAtATime(self):
        self.generation(["tcp:9090"])
        failure = self.supervisor.startGeneration([], "third")
        self.assertIsInstance(self.failureResultOf(failure).value, GenerationFailed)

    def test_stopWaitsForRetiring(self):
        """
        Stopping the main process stops the draining old generation too,
        and waits for it.
        """
        d = self.generation(["tcp:9090"])
        new = dict(self.supervisor.workers)
        for worker in new.values():
            self.ready(worker)
        self.successResultOf(d).commit()
        stopped = self.supervisor.stopService()
        for worker in new.values():
            self.assertEqual(worker.transport.signals, ["TERM"])
            self.end(worker)
        self.assertNoResult(stopped)
        for worker in self.old.values():
            self.end(worker)
        self.successResultOf(stopped)
        self.clock.advance(100)
        self.assertEqual(len(self.spawn.calls), 4)


    def test_stopWhileStarting(self):
        """
        Stopping while a new generation starts: the generation fails, no
        worker is started any more, both generations are stopped.
        """
        d = self.generation(["tcp:9090"])
        new = dict(self.supervisor.workers)
        self.end(self.old[1], ProcessTerminated(exitCode=1))
        stopped = self.supervisor.stopService()
        self.failureResultOf(d)
        self.assertEqual(len(self.spawn.calls), 4)
        for worker in list(new.values()) + [self.old[0]]:
            self.assertEqual(worker.transport.signals, ["TERM"])
            self.end(worker)
        self.successResultOf(stopped)


MOVED = BASE.replace('listen = "tcp:8080"', 'listen = "tcp:9090"')


class MainReloadTests(SynchronousTestCase):
    """
    The main process's L{Reloader} with a generation: applied only once
    the new workers are up; a failure changes nothing.
    """

    def setUp(self):
        self.harness = ProxyHarness(parse_text(BASE, "a.toml"))
        self.sent = []
        self.calls = []
        self.reloader = Reloader(
            self.harness.core, self.harness.reactor, "a.toml",
            workers=lambda path, text: self.sent.append(text),
            generation=self.generation, read=lambda path: MOVED,
        )

    def generation(self, config, text):
        from twisted.internet.defer import Deferred

        d = Deferred()
        self.calls.append((all_listeners(config), text, d))
        return d

    def test_appliedWhenReady(self):
        from lbproxy.app.generations import Handover

        runtime = self.harness.core.runtime
        d = self.reloader.reload("SIGHUP")
        (listen, text, pending), = self.calls
        self.assertEqual((listen, text), (["tcp:9090"], MOVED))
        self.assertIs(self.harness.core.runtime, runtime)
        committed = []
        pending.callback(Handover(["tcp:9090"], lambda: committed.append(1) or ["tcp:8080"]))
        outcome = self.successResultOf(d)
        self.assertTrue(outcome["applied"], outcome)
        self.assertEqual(committed, [1])
        self.assertEqual(outcome["listeners_opened"], ["tcp:9090"])
        self.assertEqual(outcome["listeners_closed"], ["tcp:8080"])
        self.assertIsNot(self.harness.core.runtime, runtime)
        # The new workers have the text already: no reload line.
        self.assertEqual(self.sent, [])

    def test_failedChangesNothing(self):
        from lbproxy.app.listeners import ListenerFailed

        runtime = self.harness.core.runtime
        d = self.reloader.reload("SIGHUP")
        self.calls[0][2].errback(ListenerFailed("cannot listen on tcp:9090: denied"))
        outcome = self.successResultOf(d)
        self.assertFalse(outcome["applied"])
        self.assertEqual(outcome["key"], "server.listen")
        self.assertIs(self.harness.core.runtime, runtime)

    def test_sameListenersNoGeneration(self):
        self.reloader._read = lambda path: BASE.replace("drain_timeout = 10", "drain_timeout = 5")
        self.assertTrue(self.successResultOf(self.reloader.reload("SIGHUP"))["applied"])
        self.assertEqual(self.calls, [])
        self.assertEqual(len(self.sent), 1)
