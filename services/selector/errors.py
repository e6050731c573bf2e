"""Selector errors that datapool.errors has no class for yet."""

from __future__ import annotations

import grpc

from datapool.errors import DatapoolError


class CommitAborted(DatapoolError):
    """Too many writers won the race in a row; the whole run may retry later."""

    code = grpc.StatusCode.ABORTED
