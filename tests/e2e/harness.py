"""
Helpers for the end-to-end tests: free ports, processes that are always
stopped, a bounded wait for a port, and curl.

Every test starts its own processes and registers their stopping with
C{addCleanup}; nothing outlives the test.  Waits are bounded by a deadline
and every curl has C{--max-time}.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from bench.harness import free_ports, port_is_open
from lbproxy.demo import CHUNK_SIZE, patternBytes

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Seconds a process gets to start listening.
START_TIMEOUT = 20.0

#: Seconds a process gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0

#: How much of a process's output goes into a failure message.
OUTPUT_TAIL = 6000


# The benchmark's helpers (tests may import the bench; not the reverse).
freePorts = free_ports
portIsOpen = port_is_open


def twistdCommand() -> List[str]:
    """
    The command that runs this virtualenv's C{twistd}.
    """
    script = Path(sys.executable).parent / "twistd"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def childEnvironment() -> Dict[str, str]:
    """
    The environment for processes the tests start: unbuffered output (so
    failure messages show everything) and no HTTP proxy settings.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")
    }
    env["PYTHONUNBUFFERED"] = "1"
    return env


def patternDigest(length: int) -> str:
    """
    SHA-256 of the first C{length} bytes C{/bytes/N} sends.
    """
    digest = hashlib.sha256()
    chunk = patternBytes(0, CHUNK_SIZE)
    remaining = length
    while remaining > 0:
        part = chunk[: min(CHUNK_SIZE, remaining)]
        digest.update(part)
        remaining -= len(part)
    return digest.hexdigest()


def rewritePorts(text: str, mapping: Dict[int, int]) -> str:
    """
    Move a configuration's ports: every port number C{old} in C{text}
    becomes C{mapping[old]}, and listen strings without an interface bind
    127.0.0.1 only.
    """
    for old, new in mapping.items():
        text = re.sub(r"(?<![0-9])%d(?![0-9])" % (old,), str(new), text)
    return re.sub(r'"tcp:([0-9]+)"', r'"tcp:\1:interface=127.0.0.1"', text)


class Process:
    """
    A child process whose output goes to files (a pipe nobody reads would
    block it) and which can be stopped by its PID.
    """

    def __init__(self, name: str, argv: Sequence[str], directory: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self._out = directory / f"{name}.stdout"
        self._err = directory / f"{name}.stderr"
        with open(self._out, "wb") as out, open(self._err, "wb") as err:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=str(directory),
                env=childEnvironment(),
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self, tail: Optional[int] = OUTPUT_TAIL) -> str:
        """
        The process's stdout and stderr so far (their last C{tail} characters
        each).
        """
        parts = []
        for label, path in (("stdout", self._out), ("stderr", self._err)):
            try:
                text = path.read_bytes().decode("utf-8", "replace")
            except OSError:
                text = ""
            if tail is not None and len(text) > tail:
                text = "[...]\n" + text[-tail:]
            parts.append(f"--- {self.name} {label} ---\n{text}")
        return "\n".join(parts)

    def stop(self) -> None:
        """
        SIGTERM, then SIGKILL if it has not exited within L{STOP_TIMEOUT}.
        """
        if self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=STOP_TIMEOUT)


@dataclass
class Response:
    """
    What curl got: status, headers of the final response, body, curl's exit
    code and stderr, and the time taken.
    """

    status: int
    headers: List[Tuple[str, str]]
    body: bytes
    exitCode: int
    stderr: str
    elapsed: float

    def header(self, name: str) -> List[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def describe(self) -> str:
        body = self.body[:500].decode("utf-8", "replace")
        return (
            f"curl exit {self.exitCode}, status {self.status}, "
            f"{self.elapsed:.2f}s\nheaders: {self.headers}\nbody: {body!r}\n"
            f"curl stderr: {self.stderr}"
        )


def parseHeaders(raw: bytes) -> Tuple[int, List[Tuple[str, str]]]:
    """
    Status and headers of the last response in a curl C{-D} dump (which
    may start with C{100 Continue}).
    """
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    if not blocks:
        return 0, []
    lines = blocks[-1].decode("latin-1").split("\n")
    parts = lines[0].split()
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return status, headers


class E2ETestCase(SynchronousTestCase):
    """
    Base class: starts processes for one test and stops them afterwards.

    @ivar workdir: A fresh directory for this test's files.
    @ivar proxy: The proxy process, once L{startProxy} has run.
    """

    proxy: Optional[Process] = None

    def setUp(self) -> None:
        if shutil.which("curl") is None:
            raise SkipTest("curl is not installed (scripts/test installs it)")
        self.workdir = Path(self.mktemp()).resolve()
        self.workdir.mkdir(parents=True)
        self.processes: List[Process] = []

    def start(self, name: str, argv: Sequence[str]) -> Process:
        process = Process(name, argv, self.workdir)
        self.processes.append(process)
        self.addCleanup(process.stop)
        return process

    def waitForPorts(self, process: Process, ports: Iterable[int]) -> None:
        """
        Poll until every port accepts connections; fail (with the process's
        output) if it exits first or L{START_TIMEOUT} passes.
        """
        deadline = time.monotonic() + START_TIMEOUT
        waiting = list(ports)
        while waiting:
            if not process.running():
                self.fail(
                    f"{process.name} exited with {process.popen.returncode} "
                    f"before listening on {waiting}\n{self.diag()}"
                )
            if time.monotonic() > deadline:
                self.fail(f"nothing listening on {waiting} after {START_TIMEOUT}s\n"
                          f"{self.diag()}")
            if portIsOpen(waiting[0]):
                waiting.pop(0)
            else:
                time.sleep(0.05)

    def startDemo(self, name: str, text: Optional[str] = None) -> int:
        """
        Start C{python -m lbproxy.demo} on a free port.

        @return: Its port.
        """
        (port,) = freePorts(1)
        argv = [sys.executable, "-m", "lbproxy.demo",
                "--listen", f"tcp:{port}:interface=127.0.0.1", "--name", name]
        if text is not None:
            argv += ["--text", text]
        self.waitForPorts(self.start(f"demo-{name}", argv), [port])
        return port

    def writeConfig(self, text: str, name: str = "lbproxy.toml") -> Path:
        path = self.workdir / name
        path.write_text(text)
        return path

    def startProxy(self, config: str, port: int, alsoWaitFor: Iterable[int] = ()) -> int:
        """
        Write C{config} and run C{twistd -n lbproxy} on it.

        @param port: The proxy's listening port, as C{config} says.
        @param alsoWaitFor: Other ports it opens (its C{[[demo]]} backends).
        @return: C{port}.
        """
        path = self.writeConfig(config)
        self.proxy = self.start(
            "lbproxy",
            twistdCommand() + ["-n", "--pidfile=", "lbproxy", "--config", str(path)],
        )
        self.waitForPorts(self.proxy, [port, *alsoWaitFor])
        return port

    def runTwistd(self, args: Sequence[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
        """
        Run C{twistd ARGS} to completion (bounded by C{timeout}).
        """
        return subprocess.run(
            twistdCommand() + list(args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            cwd=str(self.workdir),
            env=childEnvironment(),
            timeout=timeout,
        )

    def diag(self) -> str:
        """
        Every process's recent output, for failure messages.
        """
        if not self.processes:
            return "(no processes started)"
        return "\n" + "\n".join(p.output() for p in self.processes)

    def curlArgs(self, port: int, path: str, args: Sequence[str], maxTime: float) -> List[str]:
        return ["curl", "-sS", "--noproxy", "*", "--max-time", str(maxTime),
                *args, f"http://127.0.0.1:{port}{path}"]

    def curl(self, port: int, path: str, *args: str, host: Optional[str] = None,
             maxTime: float = 30.0) -> Response:
        """
        One request with curl; headers and body are kept in memory, so only
        for small bodies.
        """
        headerFile = self.workdir / "curl-headers"
        extra = ["-D", str(headerFile)]
        if host is not None:
            extra += ["-H", f"Host: {host}"]
        started = time.monotonic()
        if headerFile.exists():
            headerFile.unlink()
        result = subprocess.run(
            self.curlArgs(port, path, [*extra, *args], maxTime),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=childEnvironment(),
            timeout=maxTime + 10,
        )
        elapsed = time.monotonic() - started
        raw = headerFile.read_bytes() if headerFile.exists() else b""
        status, headers = parseHeaders(raw)
        return Response(status, headers, result.stdout, result.returncode,
                        result.stderr.decode("utf-8", "replace"), elapsed)

    def curlJSON(self, port: int, path: str, *args: str, host: Optional[str] = None) -> dict:
        response = self.curl(port, path, *args, host=host)
        self.assertEqual(response.status, 200, response.describe() + self.diag())
        try:
            return json.loads(response.body)
        except ValueError:
            self.fail("not JSON: " + response.describe() + self.diag())

    def assertNoUnhandledErrors(self) -> None:
        """
        The proxy's output shows no unhandled error or traceback.
        """
        assert self.proxy is not None
        output = self.proxy.output(tail=None)
        for marker in ("Unhandled Error", "Unhandled error", "Traceback"):
            self.assertNotIn(marker, output, self.diag())
