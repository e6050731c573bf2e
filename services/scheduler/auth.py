"""The scheduler's check of the user's bearer token (DATAPOOL_TOKEN) on every call."""

from __future__ import annotations

from services.common.auth import TokenInterceptor

REFUSED = "the token was refused: call with the scheduler's DATAPOOL_TOKEN (ApiWorkflowClient(token=...))"
MISSING = "the token was refused: no token was sent; pass ApiWorkflowClient(token=...)"


def user_token_interceptor(token: str) -> TokenInterceptor:
    return TokenInterceptor(token, missing=MISSING, refused=REFUSED)
