"""Read URLs for downloads the Lightly client GETs without its token (embeddings CSV, run report).

Lightly hands out signed URLs for these; the gateway hands out its own URL with a ticket: the
caller's token encrypted and authenticated (Fernet) under a key only this process holds, valid for
an hour. The token never appears in the URL in the clear, and a ticket cannot be forged or edited.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken

from services.gateway.errors import GatewayError

TICKET_TTL_S = 3600


class Tickets:
    def __init__(self, key: bytes | None = None) -> None:
        self._fernet = Fernet(key or Fernet.generate_key())

    def issue(self, token: str, resource: str) -> str:
        return self._fernet.encrypt(f"{resource}\n{token}".encode()).decode()

    def redeem(self, ticket: str, resource: str) -> str:
        """The token the ticket was issued for; 403 when it is forged, expired or for another resource."""
        try:
            text = self._fernet.decrypt(ticket.encode(), ttl=TICKET_TTL_S).decode()
        except (InvalidToken, ValueError):
            raise GatewayError(
                403, "FORBIDDEN", "ticket: invalid or expired read URL; ask for a new one"
            ) from None
        issued_for, _, token = text.partition("\n")
        if issued_for != resource:
            raise GatewayError(403, "FORBIDDEN", "ticket: this read URL is for another resource")
        return token
