"""How many files the scheduler embeds at once: two per embedder address, or `--embed-streams`.

In Kubernetes the scheduler gets one `dns:///` address for all embedder pods, so two per address
would leave all but two pods idle; the chart passes `--embed-streams` instead.
"""

from __future__ import annotations

import subprocess
import sys

from services.scheduler.remotes import EmbedderPool


def test_without_a_stream_count_the_pool_embeds_two_files_per_address() -> None:
    pool = EmbedderPool(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"])
    try:
        assert pool.streams == 6
    finally:
        pool.close()


def test_one_dns_address_for_many_pods_embeds_as_many_files_as_it_is_told() -> None:
    pool = EmbedderPool(["dns:///embedder-headless.datapool.svc.cluster.local:50053"], streams=16)
    try:
        assert len(pool.replicas) == 1
        assert pool.streams == 16
    finally:
        pool.close()


def test_a_negative_stream_count_is_refused_naming_the_flag(tmp_path: object) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.scheduler",
            "--state-dir",
            str(tmp_path),
            "--selector",
            "127.0.0.1:1",
            "--embedder",
            "127.0.0.1:2",
            "--embed-streams",
            "-1",
            "--insecure-no-internal-token",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "--embed-streams must be >= 0, got -1" in proc.stderr
