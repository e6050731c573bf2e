"""Error details that travel with a status code, so a caller need not guess from the code alone.

FAILED_PRECONDITION and INVALID_ARGUMENT also answer a bad request; the trailing-metadata
key below says "this service cannot run the backend you asked for", which no other
replica of the same build will run either (services/scheduler/remotes.py reads it).
"""

from __future__ import annotations

# Set by the embedder, with the value "1", on a call refused for its `backend` field.
BACKEND_REFUSED_KEY = "datapool-backend-refused"
