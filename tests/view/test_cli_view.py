"""`datapool view` as a user starts it: the command, its token, and a scheduler that refuses it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

from view_support import TOKEN, Datasets, get, serving

from datapool.ports import free_port
from datapool.view.app import create_app
from datapool.view.grpc_source import GrpcViewSource


def test_datapool_view_opens_the_dataset_named_on_the_command_line_with_the_token_it_prints(
    datasets: Datasets,
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "datapool.cli", "view", "--address", datasets.address]
    command += ["--token", TOKEN, "--ca-cert", str(datasets.ca_cert), "--dataset", datasets.two_runs]
    command += ["--port", str(port)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        printed = proc.stdout.readline()
        address = re.search(r"http://\S+", printed)
        assert address, printed
        token = parse_qs(urlsplit(address.group()).query)["token"][0]
        # A browser: the token in the address sets the cookie that the redirect and the page use.
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        deadline = time.monotonic() + 60
        while True:  # the address is printed before the server listens
            try:
                with browser.open(f"http://127.0.0.1:{port}/?token={token}", timeout=60) as r:
                    status, body = r.status, r.read()
                break
            except urllib.error.URLError:
                assert proc.poll() is None and time.monotonic() < deadline, "datapool view did not start"
                time.sleep(0.2)
        # "/" redirects to the dataset's page (urllib follows it, with the cookie).
        assert status == 200
        assert f'data-api="/api/datasets/{datasets.two_runs}"' in body.decode()
        # Without it, nothing: not the page, not the data.
        assert get(f"http://127.0.0.1:{port}/")[0] == 401
        assert get(f"http://127.0.0.1:{port}/api/datasets/{datasets.two_runs}/meta")[0] == 401
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert "Traceback" not in stderr


def test_a_token_the_scheduler_refuses_gets_a_page_saying_so(datasets: Datasets) -> None:
    source = GrpcViewSource(datasets.address, "not-the-token", datasets.ca_cert)
    with serving(create_app(source)) as url:
        status, body = get(f"{url}/datasets/{datasets.two_runs}")
    source.close()
    assert status == 502
    assert "the token was refused" in body.decode()


def test_a_view_without_the_ca_certificate_of_a_tls_scheduler_says_so(datasets: Datasets) -> None:
    source = GrpcViewSource(datasets.address, TOKEN)
    with serving(create_app(source)) as url:
        status, body = get(f"{url}/datasets/{datasets.two_runs}")
    source.close()
    assert status == 502
    assert "requires TLS" in body.decode()


def test_datapool_view_refuses_to_serve_beyond_loopback_naming_the_flag() -> None:
    # The page has no login of its own: on a public address it would serve the pool to anyone.
    done = subprocess.run(
        [sys.executable, "-m", "datapool.cli", "view", "--host", "0.0.0.0", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--host '0.0.0.0' is not a loopback address" in done.stderr


def test_datapool_view_refuses_an_unknown_projection_naming_the_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "datapool.cli", "view", "--projection", "isomap"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--projection" in done.stderr and "'isomap'" in done.stderr and "umap" in done.stderr
