"""`--log-format json`: one JSON object per line with time, level, logger and message, and no secret."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest

from datapool.storage.locations import s3_location
from services.common.logging_setup import setup_logging
from services.common.secrets import MASK, SCRUBBER

SECRET = "wJalrXUtnFEMI-logging-test-secret"


@pytest.fixture
def start(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., io.StringIO]]:
    """setup_logging(level, format) writing to the returned buffer instead of stderr; the root
    logger's handlers and level are restored after the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)

    def start(*args: str) -> io.StringIO:
        # Patched inside the test: pytest's capture puts its own sys.stderr back between phases.
        out = io.StringIO()
        monkeypatch.setattr(sys, "stderr", out)
        setup_logging(*args)
        return out

    try:
        yield start
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_each_record_is_one_json_object_with_time_level_logger_and_message(
    start: Callable[..., io.StringIO],
) -> None:
    stderr = start("INFO", "json")
    log = logging.getLogger("datapool.test")
    log.info("embedded %s: %d frames", "a.mp4", 24)
    log.warning("two\nlines")
    log.debug("not at INFO")
    first, second = lines(stderr)
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "datapool.test",
        "embedded a.mp4: 24 frames",
    )
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert (second["level"], second["message"]) == ("WARNING", "two\nlines")


def test_an_exception_stays_inside_its_records_line(start: Callable[..., io.StringIO]) -> None:
    stderr = start("INFO", "json")
    try:
        raise ValueError("bad value")
    except ValueError:
        logging.getLogger("datapool.test").exception("run failed")
    (record,) = lines(stderr)
    assert record["message"] == "run failed"
    assert "ValueError: bad value" in record["exception"]


def test_secrets_and_extra_attributes_never_reach_a_json_log(start: Callable[..., io.StringIO]) -> None:
    SCRUBBER.register(s3_location("bucket-a", access_key_id="AKIATEST", secret_access_key=SECRET))
    stderr = start("INFO", "json")
    log = logging.getLogger("datapool.test")
    log.error("cannot open s3 with %s", SECRET)
    log.info("listing", extra={"location": f"key={SECRET}"})
    text = stderr.getvalue()
    assert SECRET not in text
    assert lines(stderr)[0]["message"] == f"cannot open s3 with {MASK}"
    assert "location" not in lines(stderr)[1]


def test_text_stays_the_default_format(start: Callable[..., io.StringIO]) -> None:
    stderr = start("INFO")
    logging.getLogger("datapool.test").info("hello")
    assert stderr.getvalue().rstrip().endswith("INFO datapool.test: hello")


def test_a_service_refuses_an_unknown_log_format_naming_the_flag() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.selector", "--log-format", "yaml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "--log-format" in proc.stderr and "json" in proc.stderr
