"""TLS on the gRPC hops: credentials from PEM files, and connection errors a person can act on.

The client trusts the CA certificate named by `ca_cert=` or `$DATAPOOL_CA_CERT`; the services
take `--tls-cert/--tls-key/--tls-ca` (`services.common.tls_args`). `datapool.tls_certs` makes
the files for one host.
"""

from __future__ import annotations

import os
import socket
import ssl
from pathlib import Path

import grpc

CA_ENV = "DATAPOOL_CA_CERT"
_HANDSHAKE_PROBE_S = 2.0


class TLSFileError(Exception):
    """A certificate or key file is missing or unreadable; the message names it."""


def read_pem(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TLSFileError(f"cannot read the {what} {path}: {e.strerror}") from None
    if b"-----BEGIN " not in data:
        raise TLSFileError(f"the {what} {path} is not a PEM file (no -----BEGIN line)")
    return data


def ca_cert_path(ca_cert: str | os.PathLike[str] | None) -> Path | None:
    """`ca_cert`, else $DATAPOOL_CA_CERT, else None (plaintext)."""
    chosen = ca_cert if ca_cert is not None else os.environ.get(CA_ENV) or None
    return Path(chosen) if chosen is not None else None


def client_tls(ca_cert: str | os.PathLike[str] | None) -> tuple[Path | None, grpc.ChannelCredentials | None]:
    """The client's CA path (`ca_cert`, else $DATAPOOL_CA_CERT) and TLS trusting it; (None, None):
    plaintext. ValueError naming the file when it cannot be read."""
    path = ca_cert_path(ca_cert)
    try:
        return path, channel_credentials(path) if path is not None else None
    except TLSFileError as e:
        raise ValueError(f"ca_cert / ${CA_ENV}: {e}") from None


def client_credentials(ca_cert: str | os.PathLike[str] | None = None) -> grpc.ChannelCredentials | None:
    """A client's TLS towards the scheduler: trust `ca_cert` or $DATAPOOL_CA_CERT; None: plaintext."""
    path = ca_cert_path(ca_cert)
    return channel_credentials(path) if path is not None else None


def channel_credentials(
    ca: str | os.PathLike[str] | None,
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
) -> grpc.ChannelCredentials:
    """TLS trusting `ca` (None: the system's roots), showing `cert`+`key` when given (mutual TLS)."""
    return grpc.ssl_channel_credentials(
        root_certificates=read_pem(ca, "CA certificate") if ca is not None else None,
        private_key=read_pem(key, "TLS key") if key is not None else None,
        certificate_chain=read_pem(cert, "TLS certificate") if cert is not None else None,
    )


def server_credentials(
    cert: str | os.PathLike[str], key: str | os.PathLike[str], client_ca: str | os.PathLike[str] | None = None
) -> grpc.ServerCredentials:
    """TLS with `cert`+`key`; with `client_ca`, callers must show a certificate it signed (mutual TLS)."""
    return grpc.ssl_server_credentials(
        [(read_pem(key, "TLS key"), read_pem(cert, "TLS certificate"))],
        root_certificates=read_pem(client_ca, "CA certificate") if client_ca is not None else None,
        require_client_auth=client_ca is not None,
    )


def explain_connection_error(details: str, address: str, ca_cert: Path | None) -> str | None:
    """What went wrong in a failed TLS or plaintext connection to `address`, in words; None if
    `details` (gRPC's UNAVAILABLE message) is not about TLS."""
    if "CERTIFICATE_VERIFY_FAILED" in details:
        if "expired" in details:
            return (
                f"the TLS certificate of {address} has expired: issue it a new one "
                "(`datapool up --tls-dir` does at start-up)"
            )
        return (
            f"the TLS certificate of {address} is not signed by the CA in {ca_cert or 'the system store'} "
            f"(ca_cert= / ${CA_ENV}): use the CA that issued the server's certificate"
        )
    if "Hostname Verification" in details or "not in peer certificate" in details:
        return (
            f"the TLS certificate of {address} does not name that host: dial a name it lists "
            "(`datapool up --tls-dir` names localhost, the loopback addresses, this host and --host)"
        )
    if "WRONG_VERSION_NUMBER" in details:
        return (
            f"{address} does not speak TLS (plaintext server): call it without ca_cert= / ${CA_ENV}, "
            "or start it with TLS"
        )
    if ca_cert is None and "Socket closed" in details and _speaks_tls(address):
        return (
            f"{address} requires TLS: pass ca_cert=PATH (or set ${CA_ENV}) to the CA certificate "
            "that signed the server's certificate (`datapool up --tls-dir DIR` writes DIR/ca.crt)"
        )
    return None


def _speaks_tls(address: str) -> bool:
    """True if a TLS handshake with `address` (host:port) gets a server hello; nothing is verified,
    nothing is sent after it. Only asked once a plaintext connection was closed on us."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or "/" in host:
        return False
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host.strip("[]"), int(port)), timeout=_HANDSHAKE_PROBE_S) as sock,
            context.wrap_socket(sock, server_hostname=host.strip("[]")),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False
