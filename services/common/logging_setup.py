"""The services' log output: plain text for a terminal, or one JSON object per line for a log pipeline.

JSON lines carry `time` (UTC, RFC 3339), `level`, `logger` and `message`, plus `exception`
when there is one; nothing else from the record, so no stray attribute (a request, a location
with keys) can reach the log. Every handler gets the secret scrubber, whatever the format.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from services.common.secrets import install_log_scrubbing

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside the message are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # The scrubbing filter formats and scrubs the traceback into exc_text before we get here.
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Replaces the root logger's handlers with one on stderr in `log_format`, scrubbed of secrets."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"--log-format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    install_log_scrubbing()
