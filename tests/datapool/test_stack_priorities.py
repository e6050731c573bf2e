"""`datapool up --embedder-nice N`: the embedders run at a lower CPU priority than the scheduler and
the selector, so on one host their video decoding and inference give way to the scheduler's calls.
`--selection-nice N` is handed to the selector, which lowers its Selects itself."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datapool.cli import build_parser
from datapool.cli_runs import stack_from_args
from datapool.stack import EMBEDDER_NICE, _Child

REPO = Path(__file__).resolve().parents[2]


def _priority(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def test_only_the_embedders_get_the_lower_priority_by_default_and_as_given(tmp_path: Path) -> None:
    assert EMBEDDER_NICE == "idle"
    for argv, nice in (
        ([], "idle"),
        (["--embedder-nice", "idle"], "idle"),
        (["--embedder-nice", "3"], 3),
        (["--embedder-nice", "0"], 0),
    ):
        args = build_parser().parse_args(
            ["up", "--state-dir", str(tmp_path / "s"), "--embedders", "2", *argv]
        )
        stack = stack_from_args(args)
        assert [e.nice for e in stack.embedders] == [nice, nice]
        assert (stack.scheduler.nice, stack.selector.nice) == (0, 0)


def test_the_selection_nice_reaches_the_selector_only_when_given(tmp_path: Path) -> None:
    for argv, expected in (([], []), (["--selection-nice", "3"], ["--selection-nice", "3"])):
        args = build_parser().parse_args(["up", "--state-dir", str(tmp_path / "s"), *argv])
        selector_args = stack_from_args(args).selector.args
        assert [a for a in selector_args if a == "--selection-nice"] == expected[:1]
        if expected:
            assert selector_args[selector_args.index("--selection-nice") + 1] == "3"


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--embedder-nice", "20"),
        ("--embedder-nice", "lazy"),
        ("--selection-nice", "20"),
        ("--selection-nice", "-1"),
    ],
)
def test_a_nice_value_out_of_range_is_refused_naming_the_flag(
    flag: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", flag, value])
    err = capsys.readouterr().err
    assert flag in err and repr(value) in err


def test_a_spawned_child_runs_at_its_lower_priority_and_its_threads_too_in_our_session(
    tmp_path: Path,
) -> None:
    # The child starts a thread and prints both niceness values (Linux: per thread), then its
    # session and process group: in our session, where its nice value counts against ours (the
    # kernel's autogroups share CPU time equally between sessions), in a process group of its own.
    code = (
        "import os, threading\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))\n"
        "t.start(); t.join()\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0), seen[0], os.getsid(0), os.getpgid(0), flush=True)\n"
    )
    (tmp_path / "nice_probe.py").write_text(code)
    child = _Child("probe", ["nice_probe"], "unused", tmp_path / "probe.log", nice=4)
    child.spawn({**os.environ, "PYTHONPATH": str(tmp_path)})
    assert child.proc is not None and child.log_file is not None
    assert child.proc.wait(30) == 0
    child.log_file.close()
    base = _priority(0)
    expected = min(19, base + 4)
    assert (tmp_path / "probe.log").read_text().split() == [
        str(expected),
        str(expected),
        str(os.getsid(0)),
        str(child.proc.pid),
    ]


def test_an_idle_child_and_its_threads_run_under_sched_idle(tmp_path: Path) -> None:
    code = (
        "import os, threading\n"
        "seen = []\n"
        "t = threading.Thread(target=lambda: seen.append(os.sched_getscheduler(0)))\n"
        "t.start(); t.join()\n"
        "print(os.sched_getscheduler(0), seen[0], os.getpriority(os.PRIO_PROCESS, 0), flush=True)\n"
    )
    (tmp_path / "idle_probe.py").write_text(code)
    child = _Child("probe", ["idle_probe"], "unused", tmp_path / "probe.log", nice="idle")
    child.spawn({**os.environ, "PYTHONPATH": str(tmp_path)})
    assert child.proc is not None and child.log_file is not None
    assert child.proc.wait(30) == 0
    child.log_file.close()
    idle = str(os.SCHED_IDLE)
    assert (tmp_path / "probe.log").read_text().split() == [idle, idle, str(_priority(0))]


def test_where_sched_idle_is_refused_the_work_is_lowered_by_nice_instead_and_it_says_so(
    tmp_path: Path,
) -> None:
    # A seccomp profile may refuse sched_setscheduler: the child still runs, lowered by nice.
    code = (
        "import logging, os, sys\n"
        "logging.basicConfig(stream=sys.stdout)\n"
        "def refused(*args):\n"
        "    raise PermissionError(1, 'Operation not permitted')\n"
        "os.sched_setscheduler = refused\n"
        "from datapool.cpu_priority import IDLE_FALLBACK_NICE, lower\n"
        "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
        "lower(0, 'idle')\n"
        "print(os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0) - before, IDLE_FALLBACK_NICE)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 0, done.stderr
    warning, figures = done.stdout.strip().splitlines()
    assert "SCHED_IDLE refused" in warning and "nice +10" in warning
    policy, lowered, fallback = (int(v) for v in figures.split())
    assert policy == os.SCHED_OTHER and lowered == min(fallback, 19 - _priority(0))
