"""
Starting the servers of a run: the backend and every subject.

L{Lineup} writes each server's configuration into the run's temporary
directory, starts it through L{bench.harness.Processes} (which stops it
by its process id) pinned to the proxy CPUs, and waits for its ports.  A
subject that cannot run here (no such interpreter, a configuration
lbproxy refuses) is left out with a note rather than failing the run.
"""

from __future__ import annotations

import functools
import grp
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Set, Tuple

from bench.harness import (
    Processes,
    ServerGone,
    Started,
    fetch,
    free_ports,
    wait_for_port,
)
from bench.facts import from_tree
from bench.plan import LARGE_SIZE, Scenario, Subject, baseline_subject
from bench.servers import (
    TLSFiles,
    haproxy_config,
    lbproxy_config,
    nginx_backend_config,
    nginx_proxy_config,
    stock_proxy_command,
)
from bench.settings import BENCH_DIR, REPO_ROOT, Settings

__all__ = ["Lineup", "Running", "Skip"]

#: Seconds a server gets to start listening.
START_TIMEOUT = 30.0

#: Seconds lbproxy gets to listen on its TLS port once its HTTP port is up.
TLS_LISTEN_TIMEOUT = 5.0


@dataclass
class Running:
    """
    A subject that is up.

    @ivar port: Its HTTP port on 127.0.0.1.
    @ivar tls_port: Its TLS port, or L{None} when it does not do TLS here.
    @ivar started: The process whose tree's CPU time is charged to it.
    @ivar unpinned: Whether it runs on every CPU instead of the proxy CPUs.
    """

    subject: Subject
    port: int
    tls_port: Optional[int]
    started: Started
    unpinned: bool = False

    def url(self, scenario: Scenario) -> Optional[str]:
        port = self.tls_port if scenario.tls else self.port
        if port is None:
            return None
        return f"{scenario.scheme}://127.0.0.1:{port}{scenario.path}"


class Skip(Exception):
    """
    A subject cannot run here; the message says why.
    """


def child_env(root: str = REPO_ROOT) -> Dict[str, str]:
    """
    The environment of Python servers: unbuffered output, and C{root}
    first on the path, so that any interpreter finds that tree's lbproxy
    and its twistd plugin (before an installed one).
    """
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    )
    return env


def short(text: str, lines: int = 4) -> str:
    """
    The first line of a message and its last few (a server's log tail can
    be long; the whole log is kept with the results).
    """
    parts = str(text).strip().splitlines()
    if len(parts) <= lines + 1:
        return "\n".join(parts)
    return "\n".join(parts[:1] + ["  ..."] + parts[-lines:])


def _nginx_user() -> Optional[str]:
    # nginx started as root switches its worker to "nobody" unless told.
    if os.geteuid() != 0:
        return None
    return "%s %s" % (pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name)


def twistd(python: str) -> List[str]:
    """
    The command running C{twistd} under C{python}: the C{twistd} script
    beside it (a virtualenv's), else Twisted's entry point directly.
    """
    script = os.path.join(os.path.dirname(python), "twistd")
    if os.path.exists(script):
        return [python, script]
    return [
        python,
        "-c",
        "import sys; from twisted.scripts.twistd import run; sys.argv[0] = 'twistd'; run()",
    ]


def write(directory: str, name: str, text: str) -> str:
    path = os.path.join(directory, name)
    with open(path, "w") as f:
        f.write(text)
    return path


class Lineup:
    """
    The servers of one run.

    @ivar running: The backend first, then every subject that started.
    @ivar notes: What was left out, and why.
    @ivar negotiated: TLS version and cipher by subject name, as
        L{check} saw them.
    """

    def __init__(
        self,
        settings: Settings,
        temp: str,
        processes: Processes,
        tls: Optional[TLSFiles],
        interpreters: List[Dict[str, str]],
        baselines: Optional[List[Dict[str, str]]] = None,
    ) -> None:
        """
        @param temp: The run's temporary directory.
        @param tls: The certificate, or L{None} for an HTTP-only run.
        @param interpreters: From L{bench.facts.interpreter_facts}, the
            main interpreter first.
        @param baselines: With C{settings.baseline_root}, the same
            interpreters (same tags) as they import from the baseline
            tree.
        """
        self.settings = settings
        self.temp = temp
        self.processes = processes
        self.tls = tls
        self.interpreters = interpreters
        self.baselines = baselines
        self.notes: List[str] = []
        self.running: List[Running] = []
        self.negotiated: Dict[str, str] = {}
        self.backend_port = 0

    def note(self, text: str) -> None:
        print(f"bench: note: {text}", flush=True)
        self.notes.append(text)

    def proxy_cpus(self, unpinned: bool = False) -> Optional[Set[int]]:
        if not self.settings.pin or unpinned:
            return None
        return self.settings.proxy_cpus

    def load_cpus(self) -> Optional[Set[int]]:
        return self.settings.load_cpus if self.settings.pin else None

    def _ports(self) -> Tuple[int, Optional[int]]:
        http, tls = free_ports(2)
        return http, (tls if self.tls else None)

    def _wait(self, started: Started, port: int, tls_port: Optional[int]) -> None:
        wait_for_port(started, port, START_TIMEOUT)
        if tls_port is not None:
            wait_for_port(started, tls_port, START_TIMEOUT)

    def check(self, running: Running, scenario: Scenario) -> Optional[str]:
        """
        One request through C{running}: L{None} if it answers 200 with the
        right body length, else what went wrong.
        """
        port = running.tls_port if scenario.tls else running.port
        if port is None:
            return "no TLS listener"
        try:
            got = fetch(port, scenario.path, self.tls if scenario.tls else None)
        except Exception as e:
            return f"request failed: {e}"
        if got.status != 200 or len(got.body) != scenario.size:
            return (
                f"answered {got.status} with {len(got.body)} bytes, "
                f"expected 200 with {scenario.size}"
            )
        if got.tls:
            self.negotiated[running.subject.name] = got.tls
        return None

    # -- the backend

    def start_backend(self) -> Running:
        """
        nginx serving C{/small} and the 1 MiB C{/1m}, on the load CPUs.
        """
        www = os.path.join(self.temp, "www")
        os.makedirs(www)
        with open(os.path.join(www, "1m"), "wb") as f:
            f.write(bytes(range(256)) * (LARGE_SIZE // 256))
        port, tls_port = self._ports()
        config = nginx_backend_config(self.temp, port, www, tls_port, self.tls, _nginx_user())
        path = write(self.temp, "backend.conf", config)
        started = self._start_nginx("backend", path, self.load_cpus())
        self._wait(started, port, tls_port)
        self.backend_port = port
        running = Running(
            Subject("direct", "backend direct (nginx)", "backend"), port, tls_port, started
        )
        self.running.append(running)
        return running

    # -- the subjects

    def start_subjects(self) -> None:
        """
        Start every subject the settings ask for, in the order of the
        table; those that cannot run are noted and left out.
        """
        if self.settings.only is not None:
            unknown = [name for name in self.settings.only if name not in self.names()]
            if unknown:
                self.note(
                    f"--only: no subject called {', '.join(unknown)} in this run "
                    f"(there are: {', '.join(self.names())})"
                )
        seen: Set[str] = set()
        for name, start in self._starters():
            if self.settings.only is not None and name not in self.settings.only:
                continue
            if name in seen:
                # e.g. --baseline-label pypy3.9 beside --python pypy3
                self.note(f"a second subject called {name} skipped (another --baseline-label?)")
                continue
            seen.add(name)
            print(f"bench: starting {name}", flush=True)
            try:
                self.running.append(start())
            except (Skip, ServerGone) as e:
                self.note(f"{name} skipped: {short(str(e))}")

    def names(self) -> List[str]:
        """
        The names of the subjects the settings ask for (before C{--only}),
        in the order of the table.
        """
        names: List[str] = []
        for name, _ in self._starters():
            if name not in names:
                names.append(name)
        return names

    def _baseline(
        self, index: int, accessLog: bool = False
    ) -> List[Tuple[str, Callable[[], Running]]]:
        """
        The starter of lbproxy from the baseline tree under the
        interpreter C{self.interpreters[index]}, if there is a baseline;
        with C{accessLog}, the baseline of C{lbproxy-log}
        (C{lbproxy-log@LABEL}).
        """
        root = self.settings.baseline_root
        if not root:
            return []
        python = self.interpreters[index]
        tag = python["tag"] if index else ""
        name, label = baseline_subject(self.settings.baseline_label, tag)
        new = f"lbproxy@{tag}" if index else "lbproxy"
        if accessLog:
            name = label = "lbproxy-log@" + self.settings.baseline_label
            new = "lbproxy-log"
        # Without the baseline's own probe (a caller that gave none), its
        # facts are the interpreter's; start_lbproxy still checks the tree.
        facts = self.baselines[index] if self.baselines else python
        start = functools.partial(
            self.start_lbproxy, facts, name, label, accessLog, root=root, baseline_for=new
        )
        return [(name, start)]

    def _starters(self) -> List[Tuple[str, Callable[[], Running]]]:
        main, extra = self.interpreters[0], self.interpreters[1:]
        stock = "Twisted ReverseProxyResource"
        starters: List[Tuple[str, Callable[[], Running]]] = [
            ("nginx", self.start_nginx_proxy),
            ("haproxy", self.start_haproxy),
            ("twisted", functools.partial(self.start_stock, main, "twisted", stock)),
        ]
        for python in extra:
            name = f"twisted@{python['tag']}"
            label = f"{stock} ({python['tag']})"
            starters.append((name, functools.partial(self.start_stock, python, name, label)))
        starters.append(
            ("lbproxy", functools.partial(self.start_lbproxy, main, "lbproxy", "lbproxy"))
        )
        starters += self._baseline(0)
        if self.settings.access_log_run:
            label = "lbproxy + access log"
            start = functools.partial(self.start_lbproxy, main, "lbproxy-log", label, True)
            starters.append(("lbproxy-log", start))
            starters += self._baseline(0, accessLog=True)
        for index, python in enumerate(extra, 1):
            name = f"lbproxy@{python['tag']}"
            label = f"lbproxy ({python['tag']})"
            starters.append((name, functools.partial(self.start_lbproxy, python, name, label)))
            starters += self._baseline(index)
        for count in self.settings.workers:
            name = f"lbproxy-w{count}"
            label = f"lbproxy, {count} workers"
            start = functools.partial(self.start_lbproxy, main, name, label, False, count)
            starters.append((name, start))
        return starters

    def _start_nginx(self, name: str, config: str, cpus: Optional[Set[int]] = None) -> Started:
        for part in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.temp, f"{name}-temp", part), exist_ok=True)
        error_log = os.path.join(self.temp, f"{name}-error.log")
        command = [self.settings.nginx, "-p", self.temp, "-e", error_log, "-c", config]
        return self.processes.start(name, command + ["-g", "daemon off;"], cpus)

    def start_nginx_proxy(self) -> Running:
        port, tls_port = self._ports()
        config = nginx_proxy_config(
            self.temp, port, self.backend_port, tls_port, self.tls, _nginx_user()
        )
        path = write(self.temp, "nginx-proxy.conf", config)
        started = self._start_nginx("nginx-proxy", path, self.proxy_cpus())
        self._wait(started, port, tls_port)
        return Running(Subject("nginx", "nginx proxy", "nginx"), port, tls_port, started)

    def start_haproxy(self) -> Running:
        if not shutil.which(self.settings.haproxy):
            raise Skip(f"{self.settings.haproxy} not found")
        port, tls_port = self._ports()
        config = haproxy_config(port, self.backend_port, tls_port, self.tls)
        command = [self.settings.haproxy, "-db", "-f", write(self.temp, "haproxy.cfg", config)]
        started = self.processes.start("haproxy", command, self.proxy_cpus())
        self._wait(started, port, tls_port)
        return Running(Subject("haproxy", "HAProxy", "haproxy"), port, tls_port, started)

    def start_stock(self, python: Dict[str, str], name: str, label: str) -> Running:
        """
        C{bench/stock_proxy.py} under C{python}.
        """
        if not python["twisted"]:
            raise Skip(f"{python['path']} cannot import Twisted")
        port, tls_port = self._ports()
        script = os.path.join(BENCH_DIR, "stock_proxy.py")
        command = stock_proxy_command(
            python["path"], script, port, self.backend_port, tls_port, self.tls
        )
        started = self.processes.start(
            name, command, self.proxy_cpus(), cwd=self.temp, env=child_env()
        )
        self._wait(started, port, tls_port)
        return Running(Subject(name, label, "twisted"), port, tls_port, started)

    def _check_lbproxy(self, python: str, path: str, root: str) -> Tuple[bool, str]:
        try:
            done = subprocess.run(
                twistd(python) + ["lbproxy", "--config", path, "--check"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=root,
                env=child_env(root),
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, str(e)
        output = done.stdout.decode("utf-8", "replace").strip()
        last = output.splitlines()[-1] if output else f"exit status {done.returncode}"
        return done.returncode == 0, last

    def start_lbproxy(
        self,
        python: Dict[str, str],
        name: str,
        label: str,
        access_log: bool = False,
        workers: Optional[int] = None,
        root: Optional[str] = None,
        baseline_for: str = "",
    ) -> Running:
        """
        C{twistd -n lbproxy} on a generated configuration, after
        C{twistd lbproxy --check}: with the C{[tls]} table if lbproxy
        accepts it and then listens on it, else HTTP only, with a note.

        Run from C{root} (its working directory, and first on
        C{PYTHONPATH}), so that lbproxy, its twistd plugin and the
        plugin's module come from that tree even when the interpreter has
        another tree installed (editable installs add theirs after
        C{PYTHONPATH}); C{python}'s probe from that tree must say so.

        @param python: L{bench.facts.interpreter_facts} of the interpreter,
            probed from C{root}.
        @param workers: C{server.workers}; with more workers than proxy
            CPUs the subject is not pinned (noted).
        @param root: The tree (default: C{settings.lbproxy_root}).
        @param baseline_for: See L{Subject.baseline_for}.
        """
        root = root or self.settings.lbproxy_root
        if not python["twisted"]:
            raise Skip(f"{python['path']} cannot import Twisted")
        if python["lbproxy"] != "yes":
            raise Skip(f"{python['path']} cannot import lbproxy ({python['lbproxy']})")
        elsewhere = from_tree(python, root)
        if elsewhere:
            raise Skip(f"{python['path']}: {elsewhere}")
        print(
            f"bench: {name}: lbproxy from {python['lbproxy_dir']}, twistd plugin "
            f"{python['plugin_file']} -> {python['plugin']} ({python['tap_file']})",
            flush=True,
        )
        port, tls_port = self._ports()
        log = os.path.join(self.temp, f"{name}-access.log") if access_log else None
        file = f"{name}.toml"
        config = lbproxy_config(port, self.backend_port, log, tls_port, self.tls, workers)
        path = write(self.temp, file, config)
        accepted, message = self._check_lbproxy(python["path"], path, root)
        if not accepted and tls_port is not None:
            write(
                self.temp, file, lbproxy_config(port, self.backend_port, log, None, None, workers)
            )
            plain_accepted, plain_message = self._check_lbproxy(python["path"], path, root)
            if plain_accepted:
                self.note(f"{label}: no TLS measurement, --check refuses [tls]: {message}")
                tls_port = None
            accepted, message = plain_accepted, plain_message
        if not accepted:
            raise Skip(f"twistd lbproxy --check refuses the configuration: {message}")

        unpinned = bool(workers and workers > len(self.settings.proxy_cpus))
        command = twistd(python["path"]) + ["-n", "--pidfile=", "lbproxy", "--config", path]
        started = self.processes.start(
            name,
            command,
            self.proxy_cpus(unpinned),
            cwd=root,
            env=child_env(root),
        )
        wait_for_port(started, port, START_TIMEOUT)
        if tls_port is not None:
            try:
                wait_for_port(started, tls_port, TLS_LISTEN_TIMEOUT)
            except ServerGone:
                if started.process.poll() is not None:
                    raise
                self.note(f"{label}: no TLS measurement, nothing listens on tls.listen")
                tls_port = None
        if unpinned:
            self.note(
                f"{label}: not pinned ({workers} workers, {len(self.settings.proxy_cpus)} "
                "proxy CPUs): it shares the CPUs with wrk and the backend"
            )
        subject = Subject(name, label, "lbproxy", baseline_for=baseline_for, root=root)
        return Running(subject, port, tls_port, started, unpinned)
