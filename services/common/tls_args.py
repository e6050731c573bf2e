"""Command-line glue for TLS, the same in all three services.

`--tls-cert/--tls-key` turn TLS on for the service's port (plaintext callers are then refused);
`--tls-ca` is the CA of the other side: the selector and the embedders accept only callers with
a certificate it signed (mutual TLS), the scheduler trusts it for the selector and embedders and
shows them its own certificate. `--health-port` answers health checks in plaintext for probes
that cannot speak TLS (Kubernetes'). A file that is unreadable, expired or does not match its key
stops the service at start, naming the flag.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from datapool.channels import ChannelTLS
from datapool.tls import TLSFileError, channel_credentials, read_pem, server_credentials

# --tls-ca of the selector and the embedders.
MUTUAL_CA_HELP = (
    "PEM CA certificate: with it, only callers showing a certificate it signed are served "
    "(the scheduler's --tls-cert: mutual TLS)"
)

# --tls-ca of the scheduler.
SCHEDULER_CA_HELP = (
    "PEM CA certificate the selector's and embedders' certificates are checked against; the "
    "scheduler shows them its --tls-cert (default: the system's CAs)"
)


@dataclass(frozen=True)
class ServiceTLS:
    cert: Path
    key: Path
    ca: Path | None
    server_name: str | None = None

    def server(self, require_client_auth: bool) -> grpc.ServerCredentials:
        return server_credentials(self.cert, self.key, self.ca if require_client_auth else None)

    def channel(self) -> ChannelTLS:
        """The scheduler's side towards the selector and embedders: trust the CA, show our
        certificate; with --tls-server-name, the name their certificates must carry."""
        options = (("grpc.ssl_target_name_override", self.server_name),) if self.server_name else ()
        return ChannelTLS(channel_credentials(self.ca, self.cert, self.key), options)


def add_tls_args(parser: argparse.ArgumentParser, ca_help: str, server_name: bool = False) -> None:
    parser.add_argument(
        "--tls-cert", type=Path, help="PEM certificate (chain) of this service: TLS on its port"
    )
    parser.add_argument("--tls-key", type=Path, help="PEM private key of --tls-cert")
    parser.add_argument("--tls-ca", type=Path, help=ca_help)
    if server_name:
        parser.add_argument(
            "--tls-server-name",
            help="the name the selector's and embedders' certificates must carry (default: the host dialled)",
        )
    parser.add_argument(
        "--health-port",
        type=int,
        default=0,
        help="also answer gRPC health checks (only those) in plaintext on this port, for probes "
        "that cannot speak TLS; 0: none",
    )


def tls_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ServiceTLS | None:
    """The TLS files named by the flags, checked; None without --tls-cert. Exits (status 2) naming a flag."""
    if args.tls_cert is None and args.tls_key is None:
        if args.tls_ca is not None:
            parser.exit(2, f"{parser.prog}: --tls-ca needs --tls-cert and --tls-key\n")
        return None
    if args.tls_cert is None or args.tls_key is None:
        parser.exit(2, f"{parser.prog}: give --tls-cert and --tls-key together\n")
    try:
        _check_pair(args.tls_cert, args.tls_key)
        if args.tls_ca is not None:
            read_pem(args.tls_ca, "CA certificate (--tls-ca)")
    except TLSFileError as e:
        parser.exit(2, f"{parser.prog}: {e}\n")
    return ServiceTLS(args.tls_cert, args.tls_key, args.tls_ca, getattr(args, "tls_server_name", None))


def health_address(args: argparse.Namespace) -> str | None:
    return f"{args.host}:{args.health_port}" if args.health_port else None


def _check_pair(cert_path: Path, key_path: Path) -> None:
    try:
        cert = x509.load_pem_x509_certificate(read_pem(cert_path, "TLS certificate (--tls-cert)"))
        key = serialization.load_pem_private_key(read_pem(key_path, "TLS key (--tls-key)"), password=None)
    except ValueError as e:
        raise TLSFileError(f"--tls-cert {cert_path} / --tls-key {key_path}: {e}") from None
    expiry = cert.not_valid_after_utc
    if expiry < dt.datetime.now(dt.UTC):
        raise TLSFileError(
            f"the TLS certificate (--tls-cert) {cert_path} expired on {expiry:%Y-%m-%d %H:%M} UTC"
        )
    if cert.public_key() != key.public_key():
        raise TLSFileError(f"the TLS key (--tls-key) {key_path} is not the key of --tls-cert {cert_path}")
