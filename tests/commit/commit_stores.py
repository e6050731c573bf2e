"""Types for the pools the commit tests use (the fixtures come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable

from datapool.storage import Store
from datapool.v1 import common_pb2

# Makes a fresh, empty pool: its location (for other processes) and a store client.
NewPool = Callable[[], tuple[common_pb2.StoreLocation, Store]]
MakeLocation = Callable[..., common_pb2.StoreLocation]
