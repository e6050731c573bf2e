"""A service started with unusable TLS files stops at once, naming the flag and the file."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from tls_support import PKI, make_pki

from services.common.tls_args import MUTUAL_CA_HELP, ServiceTLS, add_tls_args, tls_from_args

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PKI:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _parse(*argv: str) -> ServiceTLS | None:
    parser = argparse.ArgumentParser(prog="svc")
    parser.add_argument("--host", default="127.0.0.1")
    add_tls_args(parser, MUTUAL_CA_HELP)
    return tls_from_args(parser, parser.parse_args(argv))


def _refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        _parse(*argv)
    assert stopped.value.code == 2
    return capsys.readouterr().err


def test_no_tls_flags_is_plaintext() -> None:
    assert _parse() is None


def test_the_files_of_datapool_up_are_accepted(pki: PKI) -> None:
    d = pki.good
    tls = _parse("--tls-cert", str(d.cert), "--tls-key", str(d.key), "--tls-ca", str(d.ca_cert))
    assert tls == ServiceTLS(d.cert, d.key, d.ca_cert)


def test_a_certificate_without_its_key_is_refused(pki: PKI, capsys: pytest.CaptureFixture[str]) -> None:
    assert "give --tls-cert and --tls-key together" in _refusal(capsys, "--tls-cert", str(pki.good.cert))
    assert "--tls-ca needs --tls-cert" in _refusal(capsys, "--tls-ca", str(pki.good.ca_cert))


def test_a_key_of_another_certificate_is_refused(pki: PKI, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refusal(capsys, "--tls-cert", str(pki.good.cert), "--tls-key", str(pki.other.key))
    assert f"the TLS key (--tls-key) {pki.other.key} is not the key of --tls-cert {pki.good.cert}" in err


def test_a_missing_ca_file_is_refused(pki: PKI, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "ca.crt"
    err = _refusal(
        capsys, "--tls-cert", str(pki.good.cert), "--tls-key", str(pki.good.key), "--tls-ca", str(missing)
    )
    assert f"cannot read the CA certificate (--tls-ca) {missing}" in err


def test_a_selector_with_an_expired_certificate_refuses_to_start(pki: PKI) -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "services.selector", "--port", "0", "--insecure-no-internal-token"),
            *("--tls-cert", str(pki.expired_cert), "--tls-key", str(pki.expired_key)),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert f"the TLS certificate (--tls-cert) {pki.expired_cert} expired on" in done.stderr
