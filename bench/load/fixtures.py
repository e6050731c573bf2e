"""What the load scenarios stand on: a real `datapool up`, datasets with inputs and pools, and the
scheduler's resident memory read from /proc."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from stack_launcher import RunningStack, running_stack  # noqa: E402

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose  # noqa: E402
from datapool.samples import make_image, make_video  # noqa: E402

TOKEN = "load-bench-token"


@contextlib.contextmanager
def stack(base: Path, up_args: tuple[str, ...] = ()) -> Iterator[RunningStack]:
    """`datapool up [up_args]` (scheduler, selector, one embedder) in `base`, stopped cleanly on exit."""
    with running_stack(base, TOKEN, args=up_args) as running:
        try:
            yield running
        except BaseException:
            # running_stack stops the stack only when its block ends normally.
            running.proc.send_signal(signal.SIGTERM)
            running.proc.wait(timeout=60)
            raise


def scheduler_pid(stack: RunningStack) -> int:
    return service_pid(stack, "services.scheduler")


def service_pid(stack: RunningStack, module: str) -> int:
    """The child of `datapool up` running `module` (found through /proc: no psutil needed)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == stack.proc.pid and module.encode() in cmdline:
            return int(entry.name)
    raise RuntimeError(f"no {module} process under datapool up")


def rss_mib(pid: int) -> float:
    """Resident MiB of `pid` and its children (the scheduler draws run reports in a child)."""
    return _own_rss_mib(pid) + sum(_own_rss_mib(child) for child in _children(pid))


def _own_rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return 0.0  # a child that ended meanwhile
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


def cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by process `pid` (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def uptime() -> str:
    """The load average next to each figure: the machine is shared, so figures are pessimistic."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


@dataclass
class Dataset:
    id: str
    name: str
    input_dir: Path
    pool_dir: Path
    staged: list[Path]

    def add_next_file(self) -> Path:
        """Moves the next staged file into the input, so the next run has new work."""
        src = self.staged.pop(0)
        dst = self.input_dir / src.name
        shutil.move(src, dst)
        return dst


def make_datasets(
    stack: RunningStack, base: Path, count: int, pools: int, *, staged: int, videos: bool, frames: int = 24
) -> list[Dataset]:
    """`count` datasets, dataset i pooling into pool i % `pools` (so several datasets commit to one
    pool and race for its manifests), each with one input file and `staged` more to add later.
    File names carry the dataset's name, so no two datasets' frames share a name in a pool."""
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    out: list[Dataset] = []
    try:
        for i in range(count):
            name = f"load-{base.name}-{i:02d}"
            input_dir, stage = base / "input" / name, base / "staged" / name
            pool_dir = base / "pools" / f"pool{i % pools}"
            for d in (input_dir, stage, pool_dir):
                d.mkdir(parents=True, exist_ok=True)
            files = []
            for j in range(staged + 1):
                seed = 1000 * i + j
                if videos:
                    files.append(make_video(stage / f"{name}-{j:03d}.mp4", scene_seed=seed, n_frames=frames))
                else:
                    files.append(make_image(stage / f"{name}-{j:03d}.png", scene_seed=seed))
            client.create_dataset(name, DatasetType.VIDEOS if videos else DatasetType.IMAGES)
            client.set_local_config(resource_path=str(input_dir), purpose=DatasourcePurpose.INPUT)
            client.set_local_config(resource_path=str(pool_dir), purpose=DatasourcePurpose.LIGHTLY)
            ds = Dataset(client.dataset_id, name, input_dir, pool_dir, files)
            ds.add_next_file()
            out.append(ds)
    finally:
        client.close()
    return out
