"""How close the shard queue gets to ideal on a cluster of unequal laptops, and what that buys.

The scheduler's decisions are `lqbench.scheduling.ShardQueue`, the same object
`cluster/scheduler.py` drives with Ray. Here the Ray layer is replaced by its
simulated twin: a discrete-event loop over a min-heap of completion times. As in
the Ray loop, after every event each free agent asks `queue.take(node)`, a shard
that completes calls `queue.done(shard_id)`, and the queue reads the (simulated)
clock to measure node speeds.

Workload: the reference study's matrix, 608 Lua tasks (HumanEval 161, MBPP 397,
MCEVAL 50) x 18 model files (five ~7B code models at Q2_K / Q4_K_M / Q8_0, and
three small FP16 models of 1.3B / 2B / 3B), one greedy sample each, shards of 8
tasks (the runner's default). File sizes are approximate public GGUF sizes.

Cost model (token generation on a CPU is memory-bound):
  sample seconds = K x model GB x task length x per-(model, task) noise x run jitter / node speed
  model load     = (2 s + GB / 1.5 GB/s) / node speed, paid when a node switches model
Task lengths are lognormal (some tasks make the model write a lot more); the
per-(model, task) noise stands for one model rambling to max_tokens where another
stops early; the jitter (mean 1) is a laptop's run-to-run variation. K is
calibrated so that one reference-class laptop (speed 1, the study's Core i5) needs
the study's 87.9 h for the whole matrix including its 18 model loads.

Fleets: "mixed" cycles through four laptop classes with decode speeds 1x, 1.5x,
2.5x, 4x (so N=1 is one reference laptop); "ref" is N reference-class laptops. The
queue sees only a noisy speed hint (true speed x lognormal 15 %), as it would from
a measured memory bandwidth, then its own measurements.

ideal = (total expected sample work + the loads no schedule avoids) / sum of node speeds,
where every model must be loaded once and every node beyond the 18th loads at least the
smallest model; all work in reference-laptop seconds. It is a lower bound for any schedule
(a perfectly divisible, perfectly balanced one); makespan / ideal <= 1.05 is the target.
Not modelled: head <-> agent latency (milliseconds against ~30 s samples) and node loss.

Run: python bench/bench_scheduler.py [--seeds 3] [--nodes 1,2,4,8,16,32,64]
"""

from __future__ import annotations

import argparse
import heapq
import random
import time
from dataclasses import dataclass

from lqbench.scheduling import NodeInfo, ShardQueue
from lqbench.shard import make_shards
from lqbench.tasks import TaskSpec

REFERENCE_HOURS = 87.9
SHARD_SIZE = 8
SUITES = (("humaneval-lua", 161), ("mbpp-lua", 397), ("mceval-lua", 50))
# (name, quant, approximate GGUF size in GB)
MODELS = [
    *[(name, quant, gb) for name, sizes in (
        ("CodeQwen1.5-7B-Chat", (3.05, 4.74, 7.71)),
        ("deepseek-coder-6.7B-instruct", (2.83, 4.08, 7.16)),
        ("CodeLlama-7B-Instruct", (2.83, 4.08, 7.16)),
        ("codegemma-7b", (3.48, 5.33, 9.08)),
        ("starcoder2-7b", (2.72, 4.40, 7.63)),
    ) for quant, gb in zip(("q2_k", "q4_k_m", "q8_0"), sizes)],
    ("deepseek-coder-1.3b", "f16", 2.69),
    ("codegemma-2b", "f16", 5.01),
    ("starcoder2-3b", "f16", 6.06),
]
LAPTOP_CLASSES = ((1.0, "reference Core i5"), (1.5, "i7 ultrabook"), (2.5, "Ryzen 7 laptop"), (4.0, "M-series Pro"))
LOAD_FIXED_S, LOAD_GBPS = 2.0, 1.5
TASK_SIGMA, MODEL_TASK_SIGMA, JITTER_SIGMA, HINT_SIGMA = 0.5, 0.3, 0.1, 0.15


def _lognormal_mean1(rng: random.Random, sigma: float) -> float:
    return rng.lognormvariate(-sigma * sigma / 2, sigma)


@dataclass
class Workload:
    shards: list
    gb: dict  # model_id -> file size in GB
    base_s: dict  # (model_id, task_id) -> expected seconds on a reference laptop, after calibration
    load_ref_s: dict  # model_id -> load seconds on a reference laptop

    @property
    def total_work_s(self) -> float:
        return sum(self.base_s.values())


def build_workload(seed: int = 0) -> Workload:
    rng = random.Random(seed)
    suites, task_len = [], {}
    for suite, n in SUITES:
        tasks = [TaskSpec(suite=suite, task_id=f"{suite}/{i}", prompt="", tests="") for i in range(n)]
        suites.append((suite, "ref", tasks))
        for t in tasks:
            task_len[t.task_id] = min(4.0, _lognormal_mean1(rng, TASK_SIGMA))
    rows, gb = [], {}
    for i, (name, quant, size) in enumerate(MODELS):
        model_id = f"m{i:02d}"
        gb[model_id] = size
        rows.append(({"model_id": model_id, "name": name, "quant": quant, "sha256": f"{i:064x}", "path": "",
                      "file_bytes": int(size * 1e9)}, {}))
    shards = make_shards("sim", rows, suites, sampling={"n": 1, "temperature": 0.0}, scoring={}, inference={},
                         shard_size=SHARD_SIZE)
    raw = {(m, t): gb[m] * task_len[t] * _lognormal_mean1(rng, MODEL_TASK_SIGMA) for m in gb for t in task_len}
    load_ref_s = {m: LOAD_FIXED_S + size / LOAD_GBPS for m, size in gb.items()}
    # Calibration: one reference laptop does the whole matrix (samples + one load per model) in 87.9 h.
    k = (REFERENCE_HOURS * 3600 - sum(load_ref_s.values())) / sum(raw.values())
    return Workload(shards=shards, gb=gb, base_s={key: v * k for key, v in raw.items()}, load_ref_s=load_ref_s)


def fleet(n: int, kind: str) -> list[float]:
    if kind == "ref":
        return [1.0] * n
    return [LAPTOP_CLASSES[i % len(LAPTOP_CLASSES)][0] for i in range(n)]


def ideal_s(work: Workload, speeds: list[float]) -> float:
    loads = sum(work.load_ref_s.values()) + max(0, len(speeds) - len(work.load_ref_s)) * min(work.load_ref_s.values())
    return (work.total_work_s + loads) / sum(speeds)


@dataclass
class SimResult:
    makespan_s: float
    loads: int
    takes: int
    pieces: int


def simulate(work: Workload, speeds: list[float], *, balance: bool, seed: int) -> SimResult:
    """One run of the whole matrix through a ShardQueue, on simulated agents."""
    rng = random.Random(seed)
    now = [0.0]
    queue = ShardQueue(work.shards, clock=lambda: now[0], balance=balance)
    nodes = [NodeInfo(key=f"n{i}", name=f"laptop-{i}", speed=s * _lognormal_mean1(rng, HINT_SIGMA))
             for i, s in enumerate(speeds)]
    loaded: list[str | None] = [None] * len(nodes)  # what the simulated agent really has in memory
    current = [None] * len(nodes)
    events: list[tuple[float, int, int]] = []  # (completion time, sequence, node index)
    seq = loads = takes = 0

    def dispatch():
        nonlocal seq, loads, takes
        for i, node in enumerate(nodes):
            if current[i] is not None:
                continue
            shard = queue.take(node)
            takes += 1
            if shard is None:
                continue
            seconds = 0.0
            if loaded[i] != shard.model_id:
                loaded[i] = shard.model_id
                loads += 1
                seconds += work.load_ref_s[shard.model_id] / speeds[i]
            for task in shard.tasks:
                seconds += work.base_s[(shard.model_id, task.task_id)] * _lognormal_mean1(rng, JITTER_SIGMA) / speeds[i]
            current[i] = shard
            seq += 1
            heapq.heappush(events, (now[0] + seconds, seq, i))

    dispatch()
    while events:
        t, _, i = heapq.heappop(events)
        now[0] = t
        queue.done(current[i].shard_id)
        current[i] = None
        dispatch()
    if not queue.empty():
        raise RuntimeError(f"simulation stalled with {len(queue.pending)} shards pending and nothing running")
    return SimResult(makespan_s=now[0], loads=loads, takes=takes, pieces=queue.finished)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:7.2f} h"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3, help="simulated runs per cell (different noise)")
    ap.add_argument("--nodes", default="1,2,4,8,16,32,64")
    args = ap.parse_args()
    counts = [int(x) for x in args.nodes.split(",")]

    work = build_workload(seed=0)
    n_samples = len(work.base_s)
    print("lqbench scheduler simulation: the real lqbench.scheduling.ShardQueue driven by a discrete-event "
          "loop (min-heap of event times) standing in for the Ray layer")
    print(f"workload: {len(MODELS)} model files x {sum(n for _, n in SUITES)} tasks = {n_samples} samples "
          f"in {len(work.shards)} shards of <= {SHARD_SIZE} tasks; calibrated: 1 reference laptop = "
          f"{(work.total_work_s + sum(work.load_ref_s.values())) / 3600:.1f} h (study: {REFERENCE_HOURS} h), "
          f"mean {work.total_work_s / n_samples:.1f} s/sample")
    print("laptop classes (mixed fleet cycles through them): "
          + ", ".join(f"{s:g}x {name}" for s, name in LAPTOP_CLASSES))
    print(f"ratio = makespan / ideal over {args.seeds} seeds (mean / worst); 'plain' = loaded model first, else "
          "oldest shard; 'balanced' = ShardQueue's default (adds piece sizing, fast nodes last, model spreading)")
    print()
    header = (f"{'N':>3} {'fleet':>5} {'speed':>6} {'ideal':>9} | {'plain ratio':>13} {'loads':>5} | "
              f"{'balanced ratio':>14} {'loads':>5} {'pieces':>6} | {'projected wall':>14}  ok")
    print(header)
    print("-" * len(header))
    t0 = time.perf_counter()
    worst_balanced = 0.0
    for kind in ("mixed", "ref"):
        for n in counts:
            speeds = fleet(n, kind)
            ideal = ideal_s(work, speeds)
            plain = [simulate(work, speeds, balance=False, seed=s) for s in range(args.seeds)]
            bal = [simulate(work, speeds, balance=True, seed=s) for s in range(args.seeds)]
            p_ratio = [r.makespan_s / ideal for r in plain]
            b_ratio = [r.makespan_s / ideal for r in bal]
            worst_balanced = max(worst_balanced, *b_ratio)
            mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
            print(f"{n:>3} {kind:>5} {sum(speeds):>5.1f}x {_hours(ideal)} | "
                  f"{mean(p_ratio):6.3f}/{max(p_ratio):6.3f} {mean([r.loads for r in plain]):5.0f} | "
                  f"{mean(b_ratio):7.3f}/{max(b_ratio):6.3f} {mean([r.loads for r in bal]):5.0f} "
                  f"{mean([r.pieces for r in bal]):6.0f} | {_hours(mean([r.makespan_s for r in bal])):>14}  "
                  f"{'yes' if max(b_ratio) <= 1.05 else 'NO'}")
        print()
    print(f"worst balanced ratio: {worst_balanced:.3f} (target <= 1.05); simulated in {time.perf_counter() - t0:.0f} s")
    print("projected wall = mean simulated makespan of the balanced queue for the study's matrix on that fleet")


if __name__ == "__main__":
    main()
