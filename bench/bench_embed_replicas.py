"""How run throughput scales with embedder replicas on CPU: 1 against 2 on the same input.

Starts the services as `datapool up --embedders N --backend onnxruntime-cpu` does
(datapool.stack.Stack), one stack per configuration, all up at once, and runs the same
720p H.264 clips (datapool.samples, as bench/bench_embed.py; generated once into the temp
folder) through each, interleaved: round 1 runs every configuration once, then round 2, ...
Each run gets a fresh pool, so the embedding cache never serves it and every frame is
decoded and embedded. Per run it prints:

- frames/s for the whole run (ScheduleRun to the end state, as the client sees it) and for
  the scheduler's embed stage (first file sent to last vector back), from the run report;
- the embedders' own decode and model seconds (summed over the files in flight at once);
- frames per replica, from each embedder's `datapool_embedder_frames_embedded` counter
  (the scheduler spreads files round-robin, so each replica should get about half);
- CPU seconds each process used during the run (utime + stime from /proc), the share of the
  machine's cores they add up to, and frames per CPU second: on a machine that other work
  keeps busy, frames/s mostly says what share of the cores the stack won (more processes and
  threads win more), frames per CPU second what that share bought;
- the load average (`/proc/loadavg`, as `uptime` prints it) before and after.

Configurations: `1x2t` (one replica, ONNX Runtime's default of one intra-op thread per core),
`2x2t` (two replicas with that default each: four inference threads on two cores) and `2x1t`
(two replicas, `--threads 1` each).

    .venv/bin/python bench/bench_embed_replicas.py [--videos 8] [--frames 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.ports import free_port
from datapool.samples import make_video
from datapool.stack import Stack

SIZE = (1280, 720)
SELECTION = {
    "n_samples": 10,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}
CONFIGS = {"1x2t": (1, None), "2x2t": (2, None), "2x1t": (2, 1)}
TICKS = os.sysconf("SC_CLK_TCK")


def clips(n: int, frames: int) -> Path:
    folder = Path(tempfile.gettempdir()) / f"datapool-replica-bench-{SIZE[0]}x{SIZE[1]}-{frames}"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        path = folder / f"clip-{i:02d}.mp4"
        if not path.exists():
            print(f"generating {path} (once)...", file=sys.stderr, flush=True)
            partial = make_video(
                folder / f".{path.name}.partial.mp4", scene_seed=40 + i, n_frames=frames, size=SIZE
            )
            partial.rename(path)
    return folder


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def frames_embedded(metrics_url: str) -> float:
    with urllib.request.urlopen(metrics_url, timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "datapool_embedder_frames_embedded":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


@dataclass
class Setup:
    name: str
    stack: Stack
    client: ApiWorkflowClient
    runs: list[dict[str, Any]] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        return {c.name: c.proc.pid for c in self.stack.children if c.proc is not None}

    def embedder_metrics(self) -> list[float]:
        return [frames_embedded(self.stack.metrics[e.name]) for e in self.stack.embedders]


def start(name: str, root: Path) -> Setup:
    replicas, threads = CONFIGS[name]
    stack = Stack(root / name, port=free_port(), embedder_replicas=replicas, backend="onnxruntime-cpu")
    for e in stack.embedders:
        e.args += ["--threads", str(threads)] if threads else []
    stack.start()
    return Setup(name, stack, ApiWorkflowClient(address=stack.address))


def one_run(setup: Setup, videos: Path, root: Path, n: int) -> dict[str, Any]:
    client = setup.client
    client.create_dataset(dataset_name=f"{setup.name}-{n}", dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    # A fresh pool: no embedding cache, every frame decoded and embedded.
    client.set_local_config(
        resource_path=str(root / f"pool-{setup.name}-{n}"), purpose=DatasourcePurpose.LIGHTLY
    )
    pids = setup.pids()
    cpu0 = {k: cpu_s(p) for k, p in pids.items()}
    frames0 = setup.embedder_metrics()
    load0 = loadavg()
    t = time.perf_counter()
    run_id = client.schedule_compute_worker_run(worker_config={}, selection_config=SELECTION)
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    wall = time.perf_counter() - t
    info = client.get_compute_worker_run_info(run_id)
    if not info.ended_successfully():
        raise SystemExit(f"{setup.name}: run {run_id} failed: {info.message}")
    report = client.download_compute_worker_run_report_json(run_id)
    cpu = {k: cpu_s(p) - cpu0[k] for k, p in pids.items()}
    per_replica = [b - a for a, b in zip(frames0, setup.embedder_metrics(), strict=True)]
    frames = report["frames"]["embedded"]
    seconds = report["seconds"]
    result = {
        "wall_s": wall,
        "frames": frames,
        "fps": frames / wall,
        "embed_fps": frames / seconds["embed"],
        "stages": seconds,
        "per_replica": per_replica,
        "cpu": cpu,
        "cpu_share": sum(cpu.values()) / (wall * (os.cpu_count() or 1)),
        # What the stack's own CPU buys, whatever share of the cores other processes left it.
        "frames_per_cpu_s": frames / sum(cpu.values()),
        "load": (load0, loadavg()),
    }
    setup.runs.append(result)
    return result


def describe(name: str, r: dict[str, Any]) -> str:
    s = r["stages"]
    cpu = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r["cpu"].items()) if v >= 0.05)
    return (
        f"{name}: {r['frames']} frames in {r['wall_s']:.2f} s = {r['fps']:.1f} frames/s whole run, "
        f"{r['embed_fps']:.1f} in the embed stage ({s['embed']:.2f} s; in the embedders, summed over "
        f"files in flight: decode {s['decode_in_embedder']:.2f} s, model {s['model_in_embedder']:.2f} s; "
        f"select {s.get('select', 0):.2f}, render {s.get('render', 0):.2f}, "
        f"commit {s.get('commit', 0):.2f} s)\n"
        f"    frames per replica {[int(f) for f in r['per_replica']]}; CPU s: {cpu}; "
        f"{r['frames_per_cpu_s']:.1f} frames per CPU s; "
        f"{100 * r['cpu_share']:.0f}% of {os.cpu_count()} cores; load {r['load'][0]} -> {r['load'][1]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=40, help="frames per 720p clip")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved repeats of every configuration")
    parser.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated, of {list(CONFIGS)}")
    args = parser.parse_args()
    names = args.configs.split(",")
    videos = clips(args.videos, args.frames)
    print(
        f"{args.videos} H.264 clips x {args.frames} frames at {SIZE[0]}x{SIZE[1]}; "
        f"{os.cpu_count()} CPUs visible; no GPU (CPU figures only); load {loadavg()}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        root = Path(tmp)
        setups: list[Setup] = []
        try:
            for name in names:
                setups.append(start(name, root))
            for setup in setups:  # warm-up: model sessions, first decode, connections
                one_run(setup, videos, root, 0)
                setup.runs.clear()
            for n in range(1, args.rounds + 1):
                for setup in setups if n % 2 else reversed(setups):
                    print(f"round {n}: " + describe(setup.name, one_run(setup, videos, root, n)), flush=True)
        finally:
            for setup in setups:
                setup.client.close()
                setup.stack.stop()
    print("median over rounds:")
    base = statistics.median(r["fps"] for r in setups[0].runs)
    for setup in setups:
        fps = statistics.median(r["fps"] for r in setup.runs)
        embed = statistics.median(r["embed_fps"] for r in setup.runs)
        share = statistics.median(r["cpu_share"] for r in setup.runs)
        per_cpu = statistics.median(r["frames_per_cpu_s"] for r in setup.runs)
        print(
            f"  {setup.name}: {fps:.1f} frames/s whole run ({fps / base:.2f}x {setups[0].name}), "
            f"{embed:.1f} in the embed stage, {per_cpu:.1f} frames per CPU s, "
            f"processes used {100 * share:.0f}% of the cores"
        )


if __name__ == "__main__":
    main()
