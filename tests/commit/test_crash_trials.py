"""Hundreds of commits SIGKILLed at every fault point and at random moments, on every store.

After each crash the parent reads the pool back through fresh listings and demands the
exact old or the exact new pool (entries, embedding bytes, processed files, tags), no
manifest naming a missing object, and then a next commit that succeeds with all invariants.
"""

from __future__ import annotations

import time

from commit_stores import NewPool
from fork_trials import ForkServer
from trial_driver import FAULT_OUTCOMES, PoolTrials, TrialStats

from services.selector.commit import FAULT_POINTS

TRIALS = {"local": 120, "s3": 50, "s3-role": 50, "gcs": 50, "azure": 50}
# A fresh pool every so many trials: each trial's child loads the whole pool, so this
# bounds its reads (the emulators answer in milliseconds, not microseconds).
TRIALS_PER_POOL = {"local": 40}
DEFAULT_TRIALS_PER_POOL = 13
# Kill delays reach a little past a typical commit, so some commits finish first.
DELAY_SPAN = 1.3


def test_every_fault_point_has_an_expected_outcome() -> None:
    assert {fault for fault, _ in FAULT_OUTCOMES} == set(FAULT_POINTS)


def test_crash_trials(store_kind: str, new_pool: NewPool, fork_server: ForkServer) -> None:
    wanted = TRIALS.get(store_kind, 50)
    totals = TrialStats()
    started = time.monotonic()
    per_pool = TRIALS_PER_POOL.get(store_kind, DEFAULT_TRIALS_PER_POOL)
    combos = list(FAULT_OUTCOMES)
    # Small pools take turns over the fault points; a large one visits all of them.
    shares = 1 if per_pool >= 2 * len(combos) else 2
    seed = 0
    while totals.total < wanted:
        location, store = new_pool()
        trials = PoolTrials(location, store, fork_server, seed=seed)
        commit_s = trials.calibrate()
        for fault, rival in combos[seed % shares :: shares]:
            trials.fault_trial(fault, rival)
            trials.follow_up()
        seed += 1
        while trials.stats.total < per_pool and totals.total + trials.stats.total < wanted:
            if trials.random_trial(DELAY_SPAN * commit_s) != "new":
                trials.follow_up()
        for name in ("fault_trials", "random_trials", "killed"):
            setattr(totals, name, getattr(totals, name) + getattr(trials.stats, name))
        for outcome, n in trials.stats.outcomes.items():
            totals.outcomes[outcome] += n
    elapsed = time.monotonic() - started
    print(
        f"\n{store_kind}: {totals.total} crash trials ({totals.fault_trials} at fault points, "
        f"{totals.random_trials} killed at random times), {totals.killed} killed mid-commit; "
        f"pool left old {totals.outcomes['old']}, rival {totals.outcomes['rival']}, "
        f"new {totals.outcomes['new']}; {elapsed:.1f}s"
    )
    assert totals.total >= wanted
    # Random kills must land mid-commit often enough to mean something.
    assert totals.killed >= totals.fault_trials + totals.random_trials // 3
