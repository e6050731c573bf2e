"""The parent's side of crash trials: predict old and new pool, run the killed child, compare."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from commit_stores import CachingReads, MemoryStore
from commit_support import Scenario, run_scenario
from fork_trials import ForkServer, TrialResult
from pool_checks import PoolView, check_invariants, pool_view

from datapool.pool.repository import PoolRepository
from datapool.storage import Store
from datapool.v1 import common_pb2

# (fault point, rival mode) -> the pool a crash there must leave: the version before the
# commit ("old"), the rival's version ("rival") or the commit's own ("new").
FAULT_OUTCOMES: dict[tuple[str, str], str] = {
    ("selector.commit.before_data", ""): "old",
    ("selector.commit.after_data.entries", ""): "old",
    ("selector.commit.after_data.embeddings", ""): "old",
    ("selector.commit.after_data.processed", ""): "old",
    ("selector.commit.after_data", ""): "old",
    ("selector.commit.after_manifest", ""): "new",
    ("selector.commit.after_reread", "first"): "rival",
    ("selector.commit.before_data", "first"): "rival",
    ("selector.commit.after_data", "first"): "rival",
    ("selector.commit.after_manifest", "first"): "new",
    ("selector.commit.after_data.embeddings", "at_put"): "old",
    ("selector.commit.lost_race", "at_put"): "rival",
    ("selector.commit.after_reread", "at_put"): "rival",
    ("selector.commit.after_manifest", "at_put"): "new",
}
RIVAL_MODES = ("", "first", "at_put")


@dataclass
class TrialStats:
    fault_trials: int = 0
    random_trials: int = 0
    killed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: {"old": 0, "rival": 0, "new": 0})

    @property
    def total(self) -> int:
        return self.fault_trials + self.random_trials


@dataclass
class _Expected:
    states: dict[str, tuple[PoolView, MemoryStore]]


class PoolTrials:
    """Crash trials on one pool; the shadow is an in-memory pool whose content mirrors the real one."""

    def __init__(
        self,
        location: common_pb2.StoreLocation,
        store: Store,
        server: ForkServer,
        seed: int,
        before_settle: Callable[[], None] | None = None,
    ) -> None:
        # Called after each trial, before the pool is read back (e.g. to let a proxy drain).
        self.before_settle = before_settle
        self.location = location.SerializeToString()
        self.store = store
        self.server = server
        self.rng = random.Random(seed)
        self.checker = PoolRepository(CachingReads(store))
        self.shadow = MemoryStore()
        self.stats = TrialStats()
        self._runs = 0
        self._used: list[str] = []
        view = check_invariants(self.checker)
        assert view == pool_view(PoolRepository(self.shadow)), "trials start on an empty pool"

    def scenario(self, rival: str) -> Scenario:
        self._runs += 1
        run = f"r{self._runs:03d}-{self.rng.randrange(1 << 16):04x}"
        files = [f"{run}/a.mp4"]
        # An earlier file again: its pooled frames must not be pooled twice.
        if self._used and self.rng.random() < 0.5:
            files.append(self.rng.choice(self._used))
        rival_files = (f"{run}/rival.mp4", files[0]) if rival else ()
        self._used.extend([files[0], *rival_files[:1]])
        return Scenario(
            run, tuple(files), n_samples=self.rng.choice((2, 3, 4)), rival=rival, rival_files=rival_files
        )

    def _expect(self, scenario: Scenario) -> _Expected:
        reference = self.shadow.copy()
        states = {"old": (pool_view(PoolRepository(self.shadow)), self.shadow)}

        def rival_committed() -> None:
            snapshot = reference.copy()
            states["rival"] = (pool_view(PoolRepository(snapshot)), snapshot)

        run_scenario(reference, scenario, on_rival_committed=rival_committed)
        states["new"] = (pool_view(PoolRepository(reference)), reference)
        if scenario.rival == "first":
            del states["old"]  # the rival commits before our Commit starts, so before any kill
        return _Expected(states)

    def _settle(self, expected: _Expected, result: TrialResult, must_be: str | None) -> str:
        assert result.ended in ("killed", "exited"), result
        if self.before_settle is not None:
            self.before_settle()
        if result.ended == "exited":
            assert result.exit_code == 0, result.log
        # Read back through fresh listings: exactly one whole version, nothing dangling.
        view = check_invariants(self.checker)
        matches = [name for name, (v, _) in expected.states.items() if v == view]
        assert matches, (
            f"pool at {view.describe()} is neither of "
            f"{ {n: v.describe() for n, (v, _) in expected.states.items()} }\n{result.log}"
        )
        outcome = matches[-1]
        if must_be is not None:
            assert outcome == must_be, f"expected the {must_be} pool, found {outcome}\n{result.log}"
        if not result.killed:
            assert outcome == "new", result.log
        self.shadow = expected.states[outcome][1]
        self.stats.outcomes[outcome] += 1
        self.stats.killed += result.killed
        return outcome

    def fault_trial(self, fault: str, rival: str) -> str:
        scenario = self.scenario(rival)
        expected = self._expect(scenario)
        result = self.server.trial(self.location, scenario.to_json(), fault=fault)
        assert result.killed, f"{fault} was never reached:\n{result.log}"
        self.stats.fault_trials += 1
        return self._settle(expected, result, FAULT_OUTCOMES[(fault, rival)])

    def random_trial(self, max_delay_s: float) -> str:
        scenario = self.scenario(self.rng.choice(RIVAL_MODES))
        expected = self._expect(scenario)
        delay = self.rng.uniform(0.0, max_delay_s)
        result = self.server.trial(self.location, scenario.to_json(), kill_after_s=delay)
        self.stats.random_trials += 1
        return self._settle(expected, result, None)

    def calibrate(self) -> float:
        """Seconds one unkilled commit takes here (a trial of its own)."""
        scenario = self.scenario("")
        expected = self._expect(scenario)
        result = self.server.trial(self.location, scenario.to_json())
        self._settle(expected, result, "new")
        return result.commit_s

    def follow_up(self) -> None:
        """A commit in this process after a crash: it succeeds and lands exactly as predicted."""
        scenario = self.scenario("")
        expected = self._expect(scenario)
        # Reads of immutable objects come from the checker's cache; listings and puts are real.
        run_scenario(self.checker.store, scenario)
        view = check_invariants(self.checker)
        assert view == expected.states["new"][0]
        self.shadow = expected.states["new"][1]
