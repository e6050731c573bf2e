"""uvicorn's access log without credentials: the Lightly client sends its token as the `token`
query parameter, and read URLs carry a `ticket`; both are masked before a line is written."""

from __future__ import annotations

import logging
import re

_SECRET_PARAMS = re.compile(r"([?&](?:token|ticket)=)[^&\s]*")


def redact(text: str) -> str:
    return _SECRET_PARAMS.sub(r"\1REDACTED", text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # uvicorn.access formats (client, method, path with query, http version, status).
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        record.msg = redact(str(record.msg))
        return True


def install() -> None:
    logging.getLogger("uvicorn.access").addFilter(RedactCredentials())
