# -*- test-case-name: tests.test_workers -*-
"""
All cores: with C{workers = N} the main process binds the listening sockets
and runs N worker processes that inherit them, supervising them.

  - Where the system has C{SO_REUSEPORT} (Linux), each worker gets its own
    listening socket for every address, all bound to the same port: the
    kernel spreads new connections evenly over them. (With one socket
    shared by all, whichever worker woke first took a whole burst of
    connections: 49 of wrk's 50 went to one worker.) The main process
    keeps every socket open, so connections that arrive for a worker
    being restarted wait in its queue instead of being refused. Elsewhere
    the workers share one socket per address.

  - A worker that exits unexpectedly is restarted, after a back-off that
    grows while it keeps crashing quickly.
  - SIGHUP to the main process is passed on to every worker (e.g. to reload
    certificates); SIGTERM stops the workers (SIGTERM, then SIGKILL after a
    grace period) and then the main process.
  - Active health checks run once, in the main process, which sends each
    state change to the workers over a pipe, so backends are not probed N
    times. Passive checks stay in each worker: they see their own
    connections. A state is one JSON object a line (L{state_line}), naming
    the target's entry in the registry by its C{ident}::

        {"target": "http://10.0.0.1:80#3f2a9c1b0d4e", "up": false}

    The C{ident} is the target's URL and a digest of the rest of its
    identity (TLS settings, health check), the same in the main process
    and its workers since they parse the same configuration (see
    L{lbproxy.runtime.targets}). A line for an unknown target, or one that
    does not parse, is ignored.
  - Demo backends run in the main process only.
  - Workers end with the main process (L{lbproxy.app.parent}): it passes
    its pid (C{--parent-pid}), and the end of the health pipe stops them.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger

from lbproxy.app.feed import HealthFeed, overrides_line, state_line
from lbproxy.app.listening import DEFAULT_BACKLOG, split_endpoint

__all__ = [
    "FIRST_LISTEN_FD", "HEALTH_FD", "MAX_BACKOFF", "READY_FD", "STABLE_AFTER", "STOP_GRACE",
    "HealthFeed", "WorkerSupervisor", "announce_ready", "bind_listener", "bind_listeners",
    "can_reuse_port", "overrides_line", "parse_tcp_listen", "state_line", "worker_argv",
    "worker_count",
]

log = Logger()

#: The worker's file descriptor on which health states arrive.
HEALTH_FD = 3
#: The worker writes "ready" here once it runs (its signal handlers are in
#: place): signals for it wait until then.
READY_FD = 4
#: Listening sockets are passed from this descriptor up.
FIRST_LISTEN_FD = 5
#: Seconds a stopping worker gets before SIGKILL.
STOP_GRACE = 10.0
#: A worker that ran this long before exiting is restarted at once.
STABLE_AFTER = 10.0
#: The longest wait before restarting a worker that keeps crashing.
MAX_BACKOFF = 30.0


def worker_count(setting) -> int:
    """
    C{workers}: a number, or C{"auto"} for one per CPU.
    """
    if setting == "auto":
        return max(1, os.cpu_count() or 1)
    return int(setting)


def parse_tcp_listen(
    description: str,
) -> Tuple[socket.AddressFamily, str, int, Optional[int]]:
    """
    The address of a C{tcp:PORT[:interface=ADDR][:backlog=N]} endpoint
    string (the form workers can share), and its backlog (L{None} if it
    sets none).

    @raise ValueError: for any other endpoint type.
    """
    parts = split_endpoint(description)
    if parts[0] not in ("tcp", "tcp6"):
        raise ValueError("only tcp: endpoints can be shared by workers")
    options = {}
    positional = []
    for part in parts[1:]:
        if "=" in part:
            key, _, value = part.partition("=")
            options[key] = value
        else:
            positional.append(part)
    if not positional and "port" not in options:
        raise ValueError("no port")
    port = int(options.get("port", positional[0] if positional else 0))
    interface = options.get("interface", "::" if parts[0] == "tcp6" else "0.0.0.0")
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    backlog = int(options["backlog"]) if "backlog" in options else None
    return family, interface, port, backlog


def bind_listener(
    description: str,
    reusePort: bool = False,
    port: Optional[int] = None,
    backlog: int = DEFAULT_BACKLOG,
    socketFactory: Callable[..., socket.socket] = socket.socket,
) -> socket.socket:
    """
    Bind and listen on a C{tcp:} endpoint's address, inheritable by child
    processes.

    @param reusePort: set C{SO_REUSEPORT}, so that more sockets can be
        bound to the same address (see L{bind_listeners}).
    @param port: bind this port instead of the description's.
    @param backlog: the listen backlog (C{server.listen_backlog}) unless
        the description sets one.
    @param socketFactory: C{socket.socket}.
    """
    family, interface, described, describedBacklog = parse_tcp_listen(description)
    if port is None:
        port = described
    if describedBacklog is not None:
        backlog = describedBacklog
    sock = socketFactory(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reusePort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((interface, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    sock.set_inheritable(True)
    return sock


def can_reuse_port() -> bool:
    """
    Whether the kernel spreads connections over sockets sharing a port
    (Linux's C{SO_REUSEPORT}; BSDs have the option with other semantics).
    """
    return hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux")


def bind_listeners(
    description: str,
    count: int,
    backlog: int = DEFAULT_BACKLOG,
    socketFactory: Callable[..., socket.socket] = socket.socket,
) -> List[socket.socket]:
    """
    The listening sockets for C{count} workers on one address: one each,
    sharing the port with C{SO_REUSEPORT}, where the kernel balances over
    them (L{can_reuse_port}); else one socket for all.

    A port already bound by another process fails, as it would without
    C{SO_REUSEPORT}: the address is first bound once without it, so a
    second lbproxy (or anything else) on the same port is an error, not a
    silent share of the traffic.

    @param backlog: each socket's listen backlog, unless the description
        sets one (see L{bind_listener}).
    """
    def bind(**kwargs) -> socket.socket:
        return bind_listener(description, backlog=backlog, socketFactory=socketFactory, **kwargs)

    if count <= 1 or not can_reuse_port():
        return [bind()]
    if parse_tcp_listen(description)[2] != 0:
        bind().close()
    sockets: List[socket.socket] = []
    try:
        sockets.append(bind(reusePort=True))
        # Port 0: the others join the port the kernel chose for the first.
        port = sockets[0].getsockname()[1]
        for _ in range(count - 1):
            sockets.append(bind(reusePort=True, port=port))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Worker(ProcessProtocol):
    """
    One worker process, as seen from the supervisor.
    """

    def __init__(self, supervisor: "WorkerSupervisor", index: int) -> None:
        self.supervisor = supervisor
        self.index = index
        self.started = 0.0
        self.ended: defer.Deferred = defer.Deferred()

    pid: Optional[int] = None
    ready = False

    def connectionMade(self) -> None:
        self.pid = self.transport.pid
        self.pendingSignals: List[str] = []
        self.supervisor._workerStarted(self)

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == READY_FD and b"ready" in data and not self.ready:
            self.ready = True
            pending, self.pendingSignals = self.pendingSignals, []
            for name in pending:
                self.signal(name)
            self.supervisor._workerReady(self)

    def childConnectionLost(self, fd: int) -> None:
        pass

    def signal(self, name: str) -> None:
        """
        Send a signal now if the worker is ready for it, else once it is
        (a SIGHUP before its handler is installed would kill it). TERM and
        KILL are sent at once.
        """
        if not self.ready and name not in ("TERM", "KILL"):
            if name not in self.pendingSignals:
                self.pendingSignals.append(name)
            return
        try:
            self.transport.signalProcess(name)
        except Exception as e:  # the process is already gone
            log.info("signal {name} to worker {index}: {e}", name=name, index=self.index, e=e)

    def processEnded(self, reason) -> None:
        self.ended.callback(None)
        self.supervisor._workerEnded(self, reason.value)

    def send(self, line: bytes) -> None:
        try:
            self.transport.writeToChild(HEALTH_FD, line)
        except (KeyError, OSError, AttributeError):
            pass


class WorkerSupervisor(Service):
    """
    Runs and restarts the workers.

    @ivar workers: the current worker per index.
    @ivar restarts: how many times workers were restarted.
    """

    def __init__(
        self,
        count: int,
        argv: Sequence[str],
        listeners: List[socket.socket],
        clock,
        spawn: Callable[..., object],
        env: Optional[Dict[str, str]] = None,
        snapshot: Callable[[], List[bytes]] = lambda: [],
        getpid: Callable[[], int] = os.getpid,
        stopGrace: float = STOP_GRACE,
        configText: Optional[Callable[[], str]] = None,
    ) -> None:
        """
        @param count: how many workers.
        @param argv: the worker command line (the listening descriptors are
            appended with C{--listen-fds}).
        @param listeners: for each listening address, its bound, listening
            sockets: one shared by every worker, or one per worker (worker
            C{i} gets the C{i}-th).
        @param spawn: C{reactor.spawnProcess}.
        @param snapshot: the current health state as lines, sent to a new
            worker before any change.
        @param getpid: C{os.getpid}: the workers are told this process's
            pid (C{--parent-pid}), to end with it.
        @param stopGrace: seconds stopping workers get to drain before
            SIGKILL (C{drain_timeout} and some).
        @param configText: the text of the configuration in service (as
            the main process validated it): a worker reads it from a pipe
            (C{--config-fd}) instead of the file, so that a worker started
            after the file changed runs what the others run.
        """
        self.count = count
        self._argv = list(argv)
        # The same list the sockets are bound into at privileged start.
        self._listeners = listeners
        self._clock = clock
        self._spawn = spawn
        self._env = dict(os.environ if env is None else env)
        self._snapshot = snapshot
        self._getpid = getpid
        self._stopGrace = stopGrace
        self._configText = configText
        self.workers: Dict[int, _Worker] = {}
        self._backoff: Dict[int, float] = {}
        self._pending: Dict[int, object] = {}
        self.restarts = 0
        self._stopping = False

    def startService(self) -> None:
        Service.startService(self)
        self._stopping = False
        for index in range(self.count):
            self._start(index)

    def _start(self, index: int) -> None:
        self._pending.pop(index, None)
        if self._stopping:
            return
        worker = _Worker(self, index)
        fds = ",".join(str(FIRST_LISTEN_FD + i) for i in range(len(self._listeners)))
        childFDs = {1: 1, 2: 2, HEALTH_FD: "w", READY_FD: "r"}
        for i, group in enumerate(self._listeners):
            childFDs[FIRST_LISTEN_FD + i] = group[index % len(group)].fileno()
        args = list(self._argv)
        if self._configText is not None:
            configFD = FIRST_LISTEN_FD + len(self._listeners)
            childFDs[configFD] = "w"
            args += ["--config-fd", str(configFD)]
        args += [
            "--parent-pid", str(self._getpid()),
            "--listen-fds", fds, "--worker-index", str(index),
        ]
        worker.started = self._clock.seconds()
        self.workers[index] = worker
        self._spawn(worker, args[0], args, env=self._env, childFDs=childFDs)

    def _workerStarted(self, worker: _Worker) -> None:
        log.info("worker {index} started (pid {pid})", index=worker.index, pid=worker.pid)
        if self._configText is not None:
            configFD = FIRST_LISTEN_FD + len(self._listeners)
            worker.transport.writeToChild(configFD, self._configText().encode("utf-8"))
            worker.transport.closeChildFD(configFD)
        for line in self._snapshot():
            worker.send(line)

    def _workerEnded(self, worker: _Worker, reason) -> None:
        if self.workers.get(worker.index) is not worker:
            return  # one of an older generation (lbproxy.app.generations)
        del self.workers[worker.index]
        if self._stopping:
            return
        ran = self._clock.seconds() - worker.started
        if ran >= STABLE_AFTER:
            delay = 0.0
        else:
            delay = min(max(1.0, self._backoff.get(worker.index, 0.5) * 2), MAX_BACKOFF)
        self._backoff[worker.index] = delay
        log.warn(
            "worker {index} (pid {pid}) exited ({reason}); restarting in {delay:g}s",
            index=worker.index,
            pid=worker.pid,
            reason=str(reason).strip().rstrip("."),
            delay=delay,
        )
        self.restarts += 1
        self._pending[worker.index] = self._clock.callLater(delay, self._start, worker.index)

    def _workerReady(self, worker: _Worker) -> None:
        """
        C{worker} runs (its signal handlers are in place).
        """

    def broadcast(self, line: bytes) -> None:
        """
        Send a health-state line to every worker.
        """
        for worker in list(self.workers.values()):
            worker.send(line)

    def signalWorkers(self, name: str) -> None:
        """
        Pass a signal (C{"HUP"}, C{"TERM"}, ...) on to every worker.
        """
        for worker in list(self.workers.values()):
            worker.signal(name)

    def _closeSockets(self) -> None:
        for group in self._listeners:
            for sock in group:
                sock.close()

    def stopService(self):
        Service.stopService(self)
        self._stopping = True
        for call in self._pending.values():
            if call.active():
                call.cancel()
        self._pending.clear()
        running = list(self.workers.values())
        if not running:
            self._closeSockets()
            return defer.succeed(None)
        self.signalWorkers("TERM")
        # Stop accepting now: with the workers' own sockets closed too, new
        # connections are refused instead of waiting in a queue nobody
        # serves any more.
        self._closeSockets()
        timer = self._clock.callLater(self._stopGrace, self.signalWorkers, "KILL")

        def done(result):
            if timer.active():
                timer.cancel()
            return result

        return defer.DeferredList([w.ended for w in running]).addBoth(done)


# -- inside a worker ------------------------------------------------------------


def announce_ready() -> None:
    """
    In a worker: tell the main process that this worker runs.
    """
    try:
        os.write(READY_FD, b"ready\n")
        os.close(READY_FD)
    except OSError:
        pass


def worker_argv(configPath: str) -> List[str]:
    """
    The command line of a worker: this interpreter running twistd on the
    same configuration.
    """
    return [
        sys.executable,
        "-c",
        "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
        "-n",
        "--pidfile=",
        "lbproxy",
        "--config",
        os.path.abspath(configPath),
    ]
