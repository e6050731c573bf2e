"""Certificates for the TLS tests: a local CA as `datapool up --tls-dir` makes it, a second CA
nobody trusts, and a certificate that has expired."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from datapool.tls_certs import TLSDir, cert_pem, ensure_local_tls, issue, key_pem, new_key


@dataclass(frozen=True)
class PKI:
    good: TLSDir  # CA + service certificate
    other: TLSDir  # another CA and a certificate it issued
    expired_cert: Path  # issued by `good`'s CA, expired yesterday
    expired_key: Path


def make_pki(root: Path) -> PKI:
    good = ensure_local_tls(root / "good")
    other = ensure_local_tls(root / "other")
    ca_key = serialization.load_pem_private_key(good.ca_key.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(good.ca_cert.read_bytes())
    key = new_key()
    now = dt.datetime.now(dt.UTC)
    cert = issue(
        ca_key, ca, key, ["localhost", "127.0.0.1"], now - dt.timedelta(days=30), now - dt.timedelta(days=1)
    )
    expired_cert, expired_key = root / "expired.crt", root / "expired.key"
    expired_cert.write_bytes(cert_pem(cert))
    expired_key.write_bytes(key_pem(key))
    return PKI(good, other, expired_cert, expired_key)
