"""
In-memory TLS for tests: a throwaway certificate authority writing
certificates to a directory, TLS connections between protocols over
L{twisted.test.iosim} (no sockets), and small HTTP/1.1 and HTTP/2 clients
to drive them.

The certificates are valid for the real current time, because OpenSSL
checks them against the system clock during handshakes; everything
lbproxy itself decides about time takes the time as an argument.
"""

from __future__ import annotations

import datetime
import os
from typing import Dict, List, Optional, Sequence, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test import iosim

from lbproxy.tls.certs import CertificateAuthority, write_pair

__all__ = ["H2Client", "PKI", "Recorder", "connectTLS", "sanNames", "tlsFactory"]


class PKI:
    """
    A test certificate authority that writes what it issues into a
    directory.

    @ivar now: The moment certificates are made at (the real time).
    @ivar caPath: The CA certificate's PEM file.
    """

    def __init__(self, directory: str, name: str = "lbproxy test CA") -> None:
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.authority = CertificateAuthority(name, self.now)
        self.caPath = self.path(f"{_safe(name)}-ca.pem")
        with open(self.caPath, "wb") as f:
            f.write(self.authority.pem)

    def path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def issue(
        self,
        name: str,
        names: Sequence[str],
        client: bool = False,
        notBefore: Optional[datetime.datetime] = None,
        notAfter: Optional[datetime.datetime] = None,
        chain: bool = False,
    ) -> Tuple[str, str]:
        """
        Issue a certificate and write it and its key.

        @param name: File name stem: C{NAME.pem} and C{NAME-key.pem}.
        @param chain: Append the CA certificate to the certificate file (a
            chain, as a server presents it).
        @return: C{(certificate path, key path)}.
        """
        notBefore = notBefore or self.now - datetime.timedelta(hours=1)
        notAfter = notAfter or self.now + datetime.timedelta(days=7)
        cert, key = self.authority.issue(names, notBefore, notAfter, client=client)
        certPath, keyPath = self.path(f"{name}.pem"), self.path(f"{name}-key.pem")
        write_pair(certPath, keyPath, cert, key)
        if chain:
            with open(certPath, "ab") as f:
                f.write(self.authority.pem)
        return certPath, keyPath


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name)


def tlsFactory(creator, isClient: bool, wrapped, clock) -> TLSMemoryBIOFactory:
    """
    A L{TLSMemoryBIOFactory} on C{clock} (older Twisted takes no clock).
    """
    try:
        return TLSMemoryBIOFactory(creator, isClient, wrapped, clock=clock)
    except TypeError:  # pragma: no cover
        return TLSMemoryBIOFactory(creator, isClient, wrapped)


CLIENT_ADDRESS = IPv4Address("TCP", "10.0.0.1", 50000)
SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8443)


def connectTLS(serverFactory, clientFactory, clock, greet: bool = True):
    """
    Connect a protocol of C{clientFactory} to one of C{serverFactory} over
    in-memory transports.

    @param clock: The reactor both sides run on; pumping advances it by
        zero, running what they scheduled with C{callLater(0, ...)}.
    @return: C{(client protocol, server protocol, pump)}.
    """
    server = serverFactory.buildProtocol(CLIENT_ADDRESS)
    client = clientFactory.buildProtocol(SERVER_ADDRESS)
    serverTransport = iosim.FakeTransport(
        server, isServer=True, hostAddress=SERVER_ADDRESS, peerAddress=CLIENT_ADDRESS
    )
    clientTransport = iosim.FakeTransport(
        client, isServer=False, hostAddress=CLIENT_ADDRESS, peerAddress=SERVER_ADDRESS
    )
    pump = iosim.connect(server, serverTransport, client, clientTransport, greet=greet,
                         clock=clock)
    return client, server, pump


class Recorder(Protocol):
    """
    Records what arrives and whether the connection was lost.
    """

    def __init__(self) -> None:
        self.data = b""
        self.lost = None

    def dataReceived(self, data: bytes) -> None:
        self.data += data

    def connectionLost(self, reason) -> None:
        self.lost = reason

    @classmethod
    def factory(cls) -> Factory:
        return Factory.forProtocol(cls)


class H2Client(Protocol):
    """
    A minimal HTTP/2 client (the C{h2} package's state machine) that
    records the responses of its streams.

    @ivar responses: Stream ID to C{{"headers": [...], "body": bytes,
        "ended": bool, "reset": error code or None}}.
    @ivar goaway: The error code of the server's C{GOAWAY}, or L{None}.
    @ivar acknowledge: Whether to give flow-control credit back for the
        data received (a client that stops reading does not).
    """

    acknowledge = True

    def __init__(self) -> None:
        import h2.config
        import h2.connection

        self.conn = h2.connection.H2Connection(
            # Not validating what it sends: tests send what they choose.
            h2.config.H2Configuration(
                client_side=True, header_encoding=None, validate_outbound_headers=False
            )
        )
        self.responses: Dict[int, dict] = {}
        self.lost = None
        self.goaway: Optional[int] = None

    def connectionMade(self) -> None:
        self.conn.initiate_connection()
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.transport.write(data)

    def request(
        self,
        method: bytes,
        path: bytes,
        authority: bytes,
        headers: Sequence[Tuple[bytes, bytes]] = (),
        body: Optional[bytes] = None,
        end: bool = True,
    ) -> int:
        """
        Start a request; with C{end} false the stream stays open for
        L{send}.

        @return: The stream ID.
        """
        fields: List[Tuple[bytes, bytes]] = [
            (b":method", method),
            (b":path", path),
            (b":authority", authority),
            (b":scheme", b"https"),
            *headers,
        ]
        stream = self.headers(fields, end=end and body is None)
        if body is not None:
            self.conn.send_data(stream, body, end_stream=end)
            self._flush()
        return stream

    def headers(self, fields: Sequence[Tuple[bytes, bytes]], end: bool = True) -> int:
        """
        Start a request with exactly these header fields (pseudo-headers
        included), e.g. a C{CONNECT}.

        @return: The stream ID.
        """
        stream = self.conn.get_next_available_stream_id()
        self.responses[stream] = {
            "headers": None, "interim": [], "body": b"", "ended": False, "reset": None
        }
        self.conn.send_headers(stream, list(fields), end_stream=end)
        self._flush()
        return stream

    def send(self, stream: int, data: bytes, end: bool = False) -> None:
        self.conn.send_data(stream, data, end_stream=end)
        self._flush()

    def dataReceived(self, data: bytes) -> None:
        import h2.events

        for event in self.conn.receive_data(data):
            response = self.responses.get(getattr(event, "stream_id", 0))
            if isinstance(event, h2.events.InformationalResponseReceived):
                response["interim"].append(event.headers)
            elif isinstance(event, h2.events.ResponseReceived):
                response["headers"] = event.headers
            elif isinstance(event, h2.events.DataReceived):
                response["body"] += event.data
                if self.acknowledge:
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
            elif isinstance(event, h2.events.StreamEnded):
                response["ended"] = True
            elif isinstance(event, h2.events.StreamReset) and response is not None:
                response["reset"] = event.error_code
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.goaway = event.error_code
        self._flush()

    def connectionLost(self, reason) -> None:
        self.lost = reason

    def header(self, stream: int, name: bytes) -> Optional[bytes]:
        for key, value in self.responses[stream]["headers"] or ():
            if key == name:
                return value
        return None


def sanNames(certificate) -> List[str]:
    """
    The DNS names in a pyOpenSSL certificate's subjectAltName (as
    C{getPeerCertificate} returns it).
    """
    from cryptography import x509

    san = certificate.to_cryptography().extensions.get_extension_for_class(
        x509.SubjectAlternativeName
    ).value
    return san.get_values_for_type(x509.DNSName)
