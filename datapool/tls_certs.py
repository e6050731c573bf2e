"""A local certificate authority for `datapool up --tls-dir DIR`: TLS on one host with one flag.

DIR holds `ca.crt` (what clients trust: `$DATAPOOL_CA_CERT`), `ca.key`, and one certificate
for the services, `tls.crt` + `tls.key` (the file names of a Kubernetes TLS Secret, so the same
flags read either). The service certificate names localhost, the loopback addresses, this host
and the service names, and serves as the scheduler's client certificate towards the selector
and the embedders too (mutual TLS). Files are reused when present; private keys are 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from datapool.private_file import ensure_private_file

SERVICE_NAMES = ("localhost", "scheduler", "selector", "embedder")
LOOPBACK = ("127.0.0.1", "::1")
CA_DAYS = 3650
# Renewed by the next `datapool up` when less than a day of validity is left.
LEAF_DAYS = 397


@dataclass(frozen=True)
class TLSDir:
    """The files of a TLS directory (see the module docstring); `TLSDir.at(root)` names them."""

    root: Path
    ca_cert: Path
    ca_key: Path
    cert: Path
    key: Path

    @classmethod
    def at(cls, root: Path) -> TLSDir:
        return cls(root, root / "ca.crt", root / "ca.key", root / "tls.crt", root / "tls.key")


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(key: ec.EllipticCurvePrivateKey, name: str = "datapool local CA") -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    names: Iterable[str],
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> x509.Certificate:
    """A certificate for servers and clients alike, naming each of `names` (hosts or IP addresses)."""
    names = list(dict.fromkeys(names))
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=5))
        .not_valid_after(not_after or now + dt.timedelta(days=LEAF_DAYS))
        .add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def ensure_local_tls(root: Path, hosts: Iterable[str] = ()) -> TLSDir:
    """The CA and the service certificate in `root`, created if absent; the certificate is issued
    again (by the same CA) when it expires within a day or does not name one of `hosts`."""
    d = TLSDir.at(root.absolute())
    root.mkdir(parents=True, exist_ok=True)
    ensure_private_file(d.ca_key, lambda: key_pem(new_key()))
    ca_key = _load_key(d.ca_key)
    # A CA certificate of another key (ca.key deleted and made anew) is made anew too.
    if not d.ca_cert.exists() or _public_key(d.ca_cert) != ca_key.public_key():
        _write_public(d.ca_cert, cert_pem(make_ca(ca_key)))
    ca = x509.load_pem_x509_certificate(d.ca_cert.read_bytes())
    names = [
        *SERVICE_NAMES,
        socket.gethostname(),
        *LOOPBACK,
        # A wildcard host ("0.0.0.0") too: dialling it reaches this host.
        *(h for h in hosts if h),
    ]
    if not _still_good(d, ca, names):
        key = new_key()
        _replace(d.key, key_pem(key), 0o600)
        _write_public(d.cert, cert_pem(issue(ca_key, ca, key, names)))
    return d


def _still_good(d: TLSDir, ca: x509.Certificate, names: list[str]) -> bool:
    if not (d.cert.exists() and d.key.exists()):
        return False
    cert = x509.load_pem_x509_certificate(d.cert.read_bytes())
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    if cert.not_valid_after_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=1):
        return False
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return all(_general_name(n) in sans for n in names)


def _public_key(cert_path: Path) -> object:
    return x509.load_pem_x509_certificate(cert_path.read_bytes()).public_key()


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _usage(cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(
            f"{path}: not the EC key `datapool up --tls-dir` writes; delete the folder to start over"
        )
    return key


def _write_public(path: Path, data: bytes) -> None:
    _replace(path, data, 0o644)


def _replace(path: Path, data: bytes, mode: int) -> None:
    """Writes `data` to a temp file created with `mode`, then renames it over `path` (atomic)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
