"""The local CA of `datapool up --tls-dir`: made once, reused, private keys, and the names that
clients on this host and the services dial."""

from __future__ import annotations

import ipaddress
import stat
from pathlib import Path

from cryptography import x509

from datapool.tls_certs import ensure_local_tls


def _names(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {*sans.get_values_for_type(x509.DNSName), *map(str, sans.get_values_for_type(x509.IPAddress))}


def test_the_folder_holds_a_ca_and_a_service_certificate_with_private_keys(tmp_path: Path) -> None:
    d = ensure_local_tls(tmp_path / "tls")
    assert {p.name for p in d.root.iterdir()} == {"ca.crt", "ca.key", "tls.crt", "tls.key"}
    assert stat.S_IMODE(d.key.stat().st_mode) == 0o600
    assert stat.S_IMODE(d.ca_key.stat().st_mode) == 0o600
    assert {"localhost", "127.0.0.1", "::1", "scheduler", "selector", "embedder"} <= _names(d.cert)
    ca = x509.load_pem_x509_certificate(d.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate(d.cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_second_start_reuses_every_file(tmp_path: Path) -> None:
    first = ensure_local_tls(tmp_path / "tls")
    before = {p.name: p.read_bytes() for p in first.root.iterdir()}
    ensure_local_tls(tmp_path / "tls")
    assert {p.name: p.read_bytes() for p in first.root.iterdir()} == before


def test_a_new_host_gets_a_new_certificate_from_the_same_ca(tmp_path: Path) -> None:
    d = ensure_local_tls(tmp_path / "tls")
    ca, cert = d.ca_cert.read_bytes(), d.cert.read_bytes()
    ensure_local_tls(tmp_path / "tls", hosts=["10.1.2.3"])
    assert d.ca_cert.read_bytes() == ca
    assert d.cert.read_bytes() != cert
    assert str(ipaddress.ip_address("10.1.2.3")) in _names(d.cert)
    assert stat.S_IMODE(d.key.stat().st_mode) == 0o600


def test_a_lost_ca_key_gives_a_new_ca_and_a_certificate_it_signed(tmp_path: Path) -> None:
    d = ensure_local_tls(tmp_path / "tls")
    old_ca = d.ca_cert.read_bytes()
    d.ca_key.unlink()
    ensure_local_tls(tmp_path / "tls")
    assert d.ca_cert.read_bytes() != old_ca
    ca = x509.load_pem_x509_certificate(d.ca_cert.read_bytes())
    x509.load_pem_x509_certificate(d.cert.read_bytes()).verify_directly_issued_by(ca)
