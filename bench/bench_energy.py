"""What metering a shard costs: its wall time with `lqbench.energy.ShardMeter` ÷ without, side by side.

(a) The meter's own cost, measured directly: one shard's worth of metering (enter = discovery + state +
    counter reads, `observe` once per sample, exit = counter + state reads) on this machine, and on a
    laptop-like fake sysfs tree (two RAPL packages with core/dram parts, psys, 8 CPUs with cpufreq and
    throttle counters, a package temperature, a discharging battery) so the cost of real counter reads is
    shown even where, as in a VM, nothing is readable. Divided by a measured per-sample time, this is the
    overhead bound per sample.
(b) With real inference (the demo GGUF through LlamaGenerator and the lupa scorer, as the agent runs a
    shard): the same shard run with and without the meter, alternating (A B B A ...) so load from other
    processes hits both sides alike; the ratio of summed wall times (target <= 1.01).
    Skipped with --no-inference, or when llama.cpp cannot generate here.

Usage: python bench/bench_energy.py [--tasks 6] [--rounds 3] [--max-tokens 64] [--no-inference]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lqbench.energy import EnergyMeter, ShardMeter, Sysfs  # noqa: E402


def _write(root: str, path: str, value) -> None:
    p = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(f"{value}\n")


def laptop_tree(root: str) -> None:
    """A sysfs tree shaped like a 2-package Intel laptop's (numbers arbitrary: only reading cost matters)."""
    for zone, name in (("intel-rapl:0", "package-0"), ("intel-rapl:0:0", "core"), ("intel-rapl:0:1", "dram"),
                       ("intel-rapl:1", "package-1"), ("intel-rapl:2", "psys")):
        _write(root, f"/sys/class/powercap/{zone}/name", name)
        _write(root, f"/sys/class/powercap/{zone}/energy_uj", 123456789)
        _write(root, f"/sys/class/powercap/{zone}/max_energy_range_uj", 262143328850)
    for i in range(8):
        base = f"/sys/devices/system/cpu/cpu{i}"
        _write(root, f"{base}/cpufreq/scaling_cur_freq", 2800000)
        _write(root, f"{base}/topology/physical_package_id", i // 4)
        _write(root, f"{base}/thermal_throttle/package_throttle_count", 3)
        _write(root, f"{base}/thermal_throttle/core_throttle_count", 1)
    _write(root, "/sys/class/thermal/thermal_zone0/type", "x86_pkg_temp")
    _write(root, "/sys/class/thermal/thermal_zone0/temp", 61000)
    for k, v in (("type", "Battery"), ("status", "Discharging"), ("energy_now", 41000000),
                 ("energy_full", 57000000), ("capacity", 72)):
        _write(root, f"/sys/class/power_supply/BAT0/{k}", v)
    _write(root, "/sys/class/power_supply/AC/type", "Mains")
    _write(root, "/sys/class/power_supply/AC/online", 0)


def meter_cost(sysfs: Sysfs | None, samples: int, reps: int) -> tuple[float, float, str]:
    """(ms per shard for enter + exit, µs per observe call, the method it recorded), medians over reps."""
    shard_ms, observe_us, method = [], [], ""
    for _ in range(reps):
        t0 = time.perf_counter()
        with ShardMeter(sysfs=sysfs) as m:
            t1 = time.perf_counter()
            for _ in range(samples):
                m.observe(100, 2000.0)
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        m.columns()
        method = m.energy.method
        shard_ms.append(((t1 - t0) + (t3 - t2)) * 1e3)
        observe_us.append((t2 - t1) / samples * 1e6)
    return statistics.median(shard_ms), statistics.median(observe_us), method


def shard_side_by_side(n_tasks: int, rounds: int, max_tokens: int) -> None:
    from lqbench.generation import LlamaGenerator
    from lqbench.hardware import physical_cores
    from lqbench.models import resolve_model
    from lqbench.scorer import ScoreLimits, ScorerPool
    from lqbench.shard import Shard, run_shard
    from lqbench.tasks import load_builtin

    model = resolve_model("demo")
    suite = load_builtin()
    tasks = tuple(suite.tasks[:n_tasks])
    threads = physical_cores()
    shard = Shard(run_id="bench-energy", model=model.to_row(), suite=suite.name, suite_version=suite.version,
                  tasks=tasks, sampling={"temperature": 0.0, "top_k": 1, "max_tokens": max_tokens, "seed": 1},
                  n_samples=1, scoring={"timeout_s": 5.0, "memory_mb": 256, "lua": "5.4"}, inference={})
    gen = LlamaGenerator(model.path, n_threads=threads, n_ctx=2048)
    pool = ScorerPool(jobs=1, limits=ScoreLimits(**shard.scoring))
    try:
        # Wall seconds, samples, tokens, and this process's CPU seconds (llama.cpp's threads included; the
        # scorer's subprocess not): CPU time is less disturbed than wall time by other load on the machine.
        def plain() -> tuple[float, int, int, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            tokens = n = 0
            for record in run_shard(shard, gen, pool, node_id="bench", n_threads=threads):
                tokens += record.gen_tokens
                n += 1
            return time.perf_counter() - t0, n, tokens, time.process_time() - c0

        def metered() -> tuple[float, int, int, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            tokens = n = 0
            with ShardMeter() as meter:
                for record in run_shard(shard, gen, pool, node_id="bench", n_threads=threads):
                    meter.observe(record.gen_tokens, record.gen_ms)
                    tokens += record.gen_tokens
                    n += 1
            meter.columns()
            return time.perf_counter() - t0, n, tokens, time.process_time() - c0

        load0 = os.getloadavg()[0]
        plain()  # warm-up: caches, scorer worker, first-call setup
        sides = {"without meter": [], "with meter": []}
        order = [("without meter", plain), ("with meter", metered)]
        for r in range(rounds):
            for name, fn in (order if r % 2 == 0 else order[::-1]):
                sides[name].append(fn())
        n_samples = sides["without meter"][0][1]
        tokens = sides["without meter"][0][2]
        print(f"\n(b) one shard of {n_samples} samples ({tokens} generated tokens, demo model {model.quant}, "
              f"{threads} threads), {rounds} rounds alternating:")
        for name, runs in sides.items():
            print(f"    {name:14s} wall per round: {', '.join(f'{r[0]:.3f}' for r in runs)} s, "
                  f"sum {sum(r[0] for r in runs):.3f} s; CPU sum {sum(r[3] for r in runs):.3f} s")
        ratio = sum(r[0] for r in sides["with meter"]) / sum(r[0] for r in sides["without meter"])
        cpu_ratio = sum(r[3] for r in sides["with meter"]) / sum(r[3] for r in sides["without meter"])
        per_round = [a[0] / b[0] for a, b in zip(sides["with meter"], sides["without meter"])]
        print(f"    wall time with ÷ without: {ratio:.4f} (target <= 1.01); per round "
              f"{', '.join(f'{x:.4f}' for x in per_round)}")
        print(f"    CPU time with ÷ without: {cpu_ratio:.4f}; load average {load0:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end on {os.cpu_count()} CPUs"
              + ("  (a busy machine: the side-by-side spread is other load, not the meter)"
                 if max(per_round) - min(per_round) > 0.05 else ""))
        per_sample_ms = sum(r[0] for r in sides["without meter"]) / rounds / n_samples * 1e3
        return per_sample_ms
    finally:
        pool.close()
        gen.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--no-inference", action="store_true")
    args = ap.parse_args()

    print(f"(a) the meter's own cost, median of {args.reps} shards of {args.tasks} samples each:")
    here_ms, here_us, here_method = meter_cost(None, args.tasks, args.reps)
    print(f"    this machine (method {here_method}, readable: {EnergyMeter().method}): "
          f"{here_ms:.3f} ms per shard (enter + exit), {here_us:.3f} µs per observe()")
    with tempfile.TemporaryDirectory(prefix="lqbench-fake-sysfs-") as root:
        laptop_tree(root)
        fake_ms, fake_us, fake_method = meter_cost(Sysfs(root), args.tasks, args.reps)
    print(f"    laptop-like fake sysfs (method {fake_method}): {fake_ms:.3f} ms per shard (enter + exit), "
          f"{fake_us:.3f} µs per observe()")
    worst_ms = max(here_ms, fake_ms) + args.tasks * max(here_us, fake_us) / 1e3

    per_sample_ms = None
    if not args.no_inference:
        per_sample_ms = shard_side_by_side(args.tasks, args.rounds, args.max_tokens)
    if per_sample_ms:
        bound = 1 + worst_ms / (per_sample_ms * args.tasks)
        print(f"\n    measured time per sample {per_sample_ms:.1f} ms: metering a {args.tasks}-sample shard adds "
              f"{worst_ms:.3f} ms, a wall-time ratio bound of {bound:.5f}")
    else:
        print(f"\n    (no inference run) metering a {args.tasks}-sample shard costs {worst_ms:.3f} ms in all")


if __name__ == "__main__":
    main()
