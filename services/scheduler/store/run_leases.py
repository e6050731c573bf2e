"""Run leases in the shared store: which scheduler replica runs a run, renewed by heartbeat.

A replica that accepts a run leases it at once. Each heartbeat renews its leases and claims runs
whose lease expired (their replica died or hung): `SELECT … FOR UPDATE SKIP LOCKED` on Postgres,
so two replicas looking at once never claim the same run; SQLite has one replica and its lock.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager

from sqlalchemy import Connection, create_engine, select, update

from services.scheduler.db import MetadataDB
from services.scheduler.store.rows import RunRow, now_ms, run_row
from services.scheduler.store.schema import runs


class RunLeases:
    def __init__(self, db: MetadataDB, owner: str, lease_ms: int) -> None:
        self.db = db
        self.owner = owner
        self.lease_ms = lease_ms
        # Postgres: the heartbeat gets connections of its own, so a burst of calls holding the
        # shared pool cannot delay a renewal past the lease (another replica would take over a
        # run that is alive). SQLite: one process, its one lock.
        self._engine = (
            create_engine(db.engine.url, pool_size=1, max_overflow=1, pool_pre_ping=True)
            if db.is_postgres
            else None
        )

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def _tx(self) -> AbstractContextManager[Connection]:
        return self._engine.begin() if self._engine is not None else self.db._tx()

    def renew(self, run_ids: Iterable[str]) -> set[str]:
        """Extends this replica's leases on `run_ids`; returns those it no longer holds."""
        wanted = set(run_ids)
        if not wanted:
            return set()
        mine = (runs.c.owner == self.owner) & runs.c.id.in_(wanted)
        with self._tx() as c:
            c.execute(update(runs).where(mine).values(lease_expires_unix_ms=now_ms() + self.lease_ms))
            held = set(c.execute(select(runs.c.id).where(mine)).scalars())
        return wanted - held

    def claim_expired(self, states: tuple[int, ...], limit: int) -> list[RunRow]:
        """Takes over up to `limit` runs in `states` whose lease expired, oldest first."""
        if limit <= 0:
            return []
        t = now_ms()
        expired = runs.c.state.in_(states) & runs.c.owner.is_not(None) & (runs.c.lease_expires_unix_ms < t)
        query = (
            select(runs.c.id)
            .where(expired)
            .order_by(runs.c.created_unix_ms)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        with self._tx() as c:
            ids = list(c.execute(query).scalars())
            if not ids:
                return []
            # The expiry is checked again in the UPDATE: where FOR UPDATE means nothing (SQLite),
            # a replica that read the same ids a moment later updates none of them.
            c.execute(
                update(runs)
                .where(runs.c.id.in_(ids) & expired)
                .values(
                    owner=self.owner,
                    lease_expires_unix_ms=t + self.lease_ms,
                    attempt=runs.c.attempt + 1,
                    updated_unix_ms=t,
                )
            )
            ours = runs.c.id.in_(ids) & (runs.c.owner == self.owner) & (runs.c.updated_unix_ms == t)
            rows = c.execute(select(runs).where(ours).order_by(runs.c.created_unix_ms))
            return [run_row(r) for r in rows.mappings()]
