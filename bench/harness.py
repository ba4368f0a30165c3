"""
Processes, ports, certificates and probes for a benchmark run.

Everything here touches the machine: it starts servers (each in its own
session, so that it can be stopped by its process id together with the
children it forks), waits for their ports on 127.0.0.1, checks that they
answer, and reads CPU time from C{/proc}.  Every wait has a deadline.
"""

from __future__ import annotations

import datetime
import http.client
import os
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from typing import IO, Dict, List, Optional, Sequence, Set

from bench.servers import TLSFiles

__all__ = [
    "Fetched",
    "Processes",
    "ServerGone",
    "fetch",
    "free_ports",
    "make_certificate",
    "parse_cpus",
    "pinning",
    "tree_cpu_seconds",
    "wait_for_port",
]

#: Seconds a server gets to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 5.0


class ServerGone(RuntimeError):
    """
    A server exited, or did not listen in time.
    """


def parse_cpus(text: str) -> Set[int]:
    """
    A CPU list as C{taskset -c} takes it: C{"0"}, C{"1-3"}, C{"0,2"}.
    """
    cpus: Set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        first, dash, last = part.partition("-")
        if dash:
            cpus.update(range(int(first), int(last) + 1))
        else:
            cpus.add(int(first))
    if not cpus:
        raise ValueError(f"empty CPU list {text!r}")
    return cpus


@dataclass
class Started:
    """
    A process this run started.

    @ivar name: What the run calls it (also its log file's name).
    @ivar process: The child.
    @ivar log: Its standard output and error.
    """

    name: str
    process: subprocess.Popen
    log: str

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, size: int = 3000) -> str:
        """
        The end of its log.
        """
        try:
            with open(self.log, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - size))
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""


class Processes:
    """
    The processes of one run, all stopped by L{stop_all}.
    """

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._started: List[Started] = []

    def start(
        self,
        name: str,
        command: Sequence[str],
        cpus: Optional[Set[int]] = None,
        cwd: Optional[str] = None,
        env: Optional[Dict[str, str]] = None,
    ) -> Started:
        """
        Start C{command} with its output in C{DIRECTORY/NAME.log}, pinned to
        C{cpus} when given, in a session of its own.
        """
        log = os.path.join(self._directory, f"{name}.log")
        output: IO[bytes] = open(log, "ab")
        try:
            process = subprocess.Popen(
                list(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=pinning(cpus),
            )
        finally:
            output.close()
        started = Started(name, process, log)
        self._started.append(started)
        return started

    def stop(self, started: Started) -> None:
        """
        SIGTERM to the process; if it is still there after L{STOP_TIMEOUT}
        seconds, SIGKILL to its process group (its id, since it leads its
        own session; it has not been reaped yet, so the id is still its).
        """
        process = started.process
        if process.poll() is None:
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(STOP_TIMEOUT)
        if started in self._started:
            self._started.remove(started)

    def stop_all(self) -> None:
        """
        Stop every process still running, the last started first.
        """
        for started in reversed(list(self._started)):
            try:
                self.stop(started)
            except Exception as e:  # keep stopping the others
                print(f"bench: could not stop {started.name} (pid {started.pid}): {e}")


def pinning(cpus: Optional[Set[int]]):
    """
    A C{preexec_fn} that pins the child to C{cpus}, or L{None}.
    """
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def free_ports(count: int) -> List[int]:
    """
    Ports on 127.0.0.1 that nothing listens on right now (all bound at once
    to port 0 so that they differ, then released).
    """
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def port_is_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(started: Started, port: int, timeout: float) -> None:
    """
    Wait until C{started} accepts connections on C{port}.

    @raise ServerGone: If it exits first or C{timeout} seconds pass.
    """
    deadline = time.monotonic() + timeout
    while True:
        if started.process.poll() is not None:
            raise ServerGone(
                f"{started.name} exited with status {started.process.returncode}:\n"
                + started.tail()
            )
        if port_is_open(port):
            return
        if time.monotonic() > deadline:
            raise ServerGone(
                f"{started.name} is not listening on 127.0.0.1:{port} after {timeout:.0f} s:\n"
                + started.tail()
            )
        time.sleep(0.1)


@dataclass(frozen=True)
class Fetched:
    """
    What L{fetch} got.

    @ivar tls: The TLS version and cipher negotiated (C{"TLSv1.3
        TLS_AES_256_GCM_SHA384"}), or L{None} over plain HTTP.
    """

    status: int
    body: bytes
    tls: Optional[str] = None


def fetch(port: int, path: str, tls: Optional[TLSFiles] = None, timeout: float = 10.0) -> Fetched:
    """
    One GET of C{path} on 127.0.0.1:C{port}.  Over TLS, the certificate is
    verified against C{tls.cert}.
    """
    if tls is None:
        connection: http.client.HTTPConnection = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=timeout
        )
    else:
        context = ssl.create_default_context(cafile=tls.cert)
        connection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=timeout, context=context
        )
    try:
        connection.request("GET", path)
        negotiated = None
        sock = connection.sock  # gone after a response with Connection: close
        if isinstance(sock, ssl.SSLSocket):
            cipher = sock.cipher()
            negotiated = f"{sock.version()} {cipher[0] if cipher else '?'}"
        response = connection.getresponse()
        return Fetched(response.status, response.read(), negotiated)
    finally:
        connection.close()


def make_certificate(directory: str, names: Sequence[str] = ("localhost", "127.0.0.1")) -> TLSFiles:
    """
    A self-signed RSA 2048 certificate for C{names}, valid for a day,
    written as C{cert.pem}, C{key.pem} and C{combined.pem}.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alternatives: List[x509.GeneralName] = []
    for name in names:
        try:
            alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alternatives.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    files = TLSFiles(
        cert=os.path.join(directory, "cert.pem"),
        key=os.path.join(directory, "key.pem"),
        combined=os.path.join(directory, "combined.pem"),
    )
    for path, data in (
        (files.cert, cert_pem),
        (files.key, key_pem),
        (files.combined, cert_pem + key_pem),
    ):
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o600)
    return files


def _children() -> Dict[int, List[int]]:
    children: Dict[int, List[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def tree_cpu_seconds(pid: int) -> float:
    """
    User and system CPU seconds used so far by C{pid} and its descendants
    (nginx's worker, lbproxy's workers).  Zero if C{pid} is gone.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    children = _children()
    total = 0
    pending = [pid]
    while pending:
        current = pending.pop()
        pending.extend(children.get(current, ()))
        try:
            with open(f"/proc/{current}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2 :].split()
        # Fields 14 and 15 of stat (utime, stime), counted from the state.
        total += int(fields[11]) + int(fields[12])
    return total / ticks
