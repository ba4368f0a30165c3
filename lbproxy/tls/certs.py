# -*- test-case-name: tests.test_tls -*-
"""
Certificates and keys as files: read and check a PEM certificate chain and
its private key, and make certificates (the demo's self-signed one, and a
small certificate authority for tests).

Built on the C{cryptography} package; no shell-outs, no reactor.  The
current time is always passed in.
"""

from __future__ import annotations

import datetime
import errno
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from lbproxy.tls.sni import CertificateNames

__all__ = [
    "CertificateAuthority",
    "CertificateError",
    "LoadedCertificate",
    "certificate_pem",
    "ensure_self_signed",
    "key_pem",
    "load_certificate_chain",
    "load_pair",
    "self_signed",
    "validity_problem",
    "write_pair",
]

_PEM_CERTIFICATE = re.compile(
    rb"-----BEGIN CERTIFICATE-----\r?\n.+?\r?\n-----END CERTIFICATE-----", re.DOTALL
)
_UTC = datetime.timezone.utc


class CertificateError(Exception):
    """
    A certificate or key file cannot be used.

    @ivar field: Which file the problem is about: C{"cert"}, C{"key"}, or
        C{""} for the pair.
    @ivar reason: What is wrong, for an operator to read.
    """

    def __init__(self, field: str, reason: str) -> None:
        Exception.__init__(self, field, reason)
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class LoadedCertificate:
    """
    A certificate chain and its private key, checked to belong together.

    @ivar chain: The certificate first, then the intermediates from the
        same file, in file order.
    @ivar key: The private key (a C{cryptography} private key object).
    @ivar names: The names the certificate is valid for.
    @ivar certPath: The file the chain came from.
    @ivar keyPath: The file the key came from.
    """

    chain: Tuple[x509.Certificate, ...]
    key: Any
    names: CertificateNames
    certPath: str
    keyPath: str

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def notBefore(self) -> datetime.datetime:
        return _not_before(self.chain[0])

    @property
    def notAfter(self) -> datetime.datetime:
        return _not_after(self.chain[0])


def _not_before(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_before_utc", None)
    return value if value is not None else cert.not_valid_before.replace(tzinfo=_UTC)


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    value = getattr(cert, "not_valid_after_utc", None)
    return value if value is not None else cert.not_valid_after.replace(tzinfo=_UTC)


def read_file(path: str, field: str) -> bytes:
    """
    The contents of a certificate or key file.

    @raise CertificateError: If it cannot be read, saying why.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise CertificateError(field, f"file not found: {path}") from None
    except IsADirectoryError:
        raise CertificateError(field, f"is a directory, not a file: {path}") from None
    except PermissionError:
        raise CertificateError(
            field, f"cannot read {path}: permission denied (lbproxy runs as uid {os.getuid()})"
        ) from None
    except OSError as e:
        raise CertificateError(field, f"cannot read {path}: {e.strerror or e}") from None


def load_certificate_chain(data: bytes, path: str, field: str = "cert") -> Tuple[x509.Certificate, ...]:
    """
    Every PEM certificate in C{data}, in order.

    @raise CertificateError: If there is none, or one cannot be parsed.
    """
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise CertificateError(
            field, f"{path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    chain = []
    for index, block in enumerate(blocks):
        try:
            chain.append(x509.load_pem_x509_certificate(block))
        except ValueError as e:
            raise CertificateError(
                field, f"{path}: certificate {index + 1} cannot be parsed: {e}"
            ) from None
    return tuple(chain)


def _load_key(data: bytes, path: str) -> Any:
    if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
        raise CertificateError(
            "key", f"{path} holds no PEM private key (-----BEGIN PRIVATE KEY-----)"
        )
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise CertificateError(
            "key",
            f"{path}: the private key is encrypted; lbproxy needs it unencrypted "
            "(protect the file with permissions instead, e.g. chmod 600)",
        ) from None
    except (ValueError, UnsupportedAlgorithm) as e:
        raise CertificateError("key", f"{path}: the private key cannot be parsed: {e}") from None


def _public_bytes(key: Any) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_names(cert: x509.Certificate) -> CertificateNames:
    """
    The DNS names and IP addresses of a certificate's subjectAltName.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return CertificateNames()
    return CertificateNames(
        san.get_values_for_type(x509.DNSName),
        [str(a) for a in san.get_values_for_type(x509.IPAddress)],
    )


def load_pair(certPath: str, keyPath: str) -> LoadedCertificate:
    """
    Read a certificate chain and its private key and check that they
    belong together.

    @raise CertificateError: If a file is missing, unreadable or not PEM,
        the key is encrypted, or the key is not the certificate's.
    """
    chain = load_certificate_chain(read_file(certPath, "cert"), certPath)
    key = _load_key(read_file(keyPath, "key"), keyPath)
    if _public_bytes(key.public_key()) != _public_bytes(chain[0].public_key()):
        raise CertificateError(
            "key",
            f"the private key in {keyPath} does not belong to the certificate "
            f"in {certPath} (a mismatched pair)",
        )
    return LoadedCertificate(chain, key, certificate_names(chain[0]), certPath, keyPath)


def validity_problem(loaded: LoadedCertificate, now: datetime.datetime) -> Optional[str]:
    """
    Why clients will refuse the certificate at C{now} (expired, or not
    valid yet), or L{None}.
    """
    stamp = "%Y-%m-%d %H:%M UTC"
    if now >= loaded.notAfter:
        return (
            f"certificate {loaded.certPath} expired on "
            f"{loaded.notAfter.strftime(stamp)}; clients will refuse it"
        )
    if now < loaded.notBefore:
        return (
            f"certificate {loaded.certPath} is not valid before "
            f"{loaded.notBefore.strftime(stamp)}; clients will refuse it until then"
        )
    return None


# -- making certificates ------------------------------------------------------


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: Any) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _alt_names(names: Sequence[str]) -> List[x509.GeneralName]:
    alt: List[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    return alt


def _serial() -> int:
    return x509.random_serial_number()


class CertificateAuthority:
    """
    A certificate authority that issues server and client certificates
    (for tests, and for anyone who wants a private CA for their backends).

    @ivar certificate: The CA's self-signed certificate.
    @ivar key: The CA's private key.
    """

    def __init__(self, name: str, now: datetime.datetime, days: int = 3650) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(_serial())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False,
                    key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return certificate_pem(self.certificate)

    def issue(
        self,
        names: Sequence[str],
        notBefore: datetime.datetime,
        notAfter: datetime.datetime,
        client: bool = False,
    ) -> Tuple[x509.Certificate, Any]:
        """
        A new key and a certificate for it, signed by this CA.

        @param names: DNS names and IP addresses for the subjectAltName; the
            first is also the common name.
        @param client: Issue a client (rather than server) certificate.
        @return: C{(certificate, key)}.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        return _leaf(names, key, self.certificate.subject, self.key, notBefore, notAfter,
                     client, self.certificate), key


def _leaf(names, key, issuer, issuerKey, notBefore, notAfter, client, issuerCert=None):
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    common = names[0] if names else "lbproxy"
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common[:64])]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(_serial())
        .not_valid_before(notBefore)
        .not_valid_after(notAfter)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=False, crl_sign=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_alt_names(names)), critical=False
        )
    if issuerCert is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuerCert.public_key()),
            critical=False,
        )
    return builder.sign(issuerKey, hashes.SHA256())


def self_signed(
    names: Sequence[str], now: datetime.datetime, days: int = 365
) -> Tuple[x509.Certificate, Any]:
    """
    A new key and a self-signed server certificate for C{names}, valid
    from an hour before C{now} for C{days} days.

    @return: C{(certificate, key)}.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (names[0] if names else "lbproxy")[:64])])
    cert = _leaf(
        names, key, subject, key,
        now - datetime.timedelta(hours=1), now + datetime.timedelta(days=days), False,
    )
    return cert, key


def write_pair(certPath: str, keyPath: str, cert: x509.Certificate, key: Any) -> None:
    """
    Write a certificate and its key, the key readable by its owner only.
    Each file is written to a temporary name and renamed into place, so a
    reader never sees half a file.
    """
    for path, data, mode in ((keyPath, key_pem(key), 0o600), (certPath, certificate_pem(cert), 0o644)):
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, temporary = tempfile.mkstemp(prefix=".lbproxy-", dir=directory)
        try:
            os.fchmod(fd, mode)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


def ensure_self_signed(
    certPath: str, keyPath: str, names: Sequence[str], now: datetime.datetime
) -> bool:
    """
    Generate a self-signed certificate into C{certPath} and C{keyPath} if
    both are missing.

    @return: Whether a certificate was generated.
    @raise CertificateError: If only one of the files exists (lbproxy will
        not overwrite a key or a certificate someone else put there), or
        they cannot be written.
    """
    haveCert, haveKey = os.path.exists(certPath), os.path.exists(keyPath)
    if haveCert and haveKey:
        return False
    if haveCert or haveKey:
        present, missing, field = (
            (certPath, keyPath, "key") if haveCert else (keyPath, certPath, "cert")
        )
        raise CertificateError(
            field,
            f"file not found: {missing} (a self-signed certificate is generated "
            f"only when both files are missing; {present} exists)",
        )
    cert, key = self_signed(names, now)
    try:
        write_pair(certPath, keyPath, cert, key)
    except OSError as e:
        reason = e.strerror or str(e)
        if e.errno in (errno.EACCES, errno.EPERM):
            reason = "permission denied"
        raise CertificateError(
            "cert", f"cannot write a self-signed certificate to {certPath}: {reason}"
        ) from None
    return True
