"""Energy and thermal state around a shard or a speed-probe repetition, as counter deltas.

`EnergyMeter` finds the best energy source the node can read (RAPL package, RAPL psys, battery
discharge, else `none`) and `begin()` opens a window over it; `finish()` gives the joules between the
two reads, never a sampled power times a duration and never a TDP estimate. `ShardMeter` wraps a shard:
power source, battery level, clock, package temperature and throttle counters at both ends, the energy
window in between, and each sample's generation speed for the drift check; `columns()` are the `shards`
columns. `diagnose()` is what `lqbench doctor`/`join` print: what is readable, and what would fix what is not.

Cost: a window is a handful of small sysfs reads at each end (microseconds) plus, during a long shard,
one read of the energy counters at most every `POLL_S` seconds so a wrapping counter is never missed.
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import dataclass
from typing import Callable

from lqbench.energy import battery, rapl, state
from lqbench.energy.base import OK, WARN, Energy, Sysfs

# Read the energy counters at least this often inside a long window: RAPL package counters wrap after
# ~262 kJ, i.e. after 20+ minutes even at 200 W, so a minute leaves a wide margin.
POLL_S = 60.0


class EnergyMeter:
    """The node's energy counters, found once; `begin()` measures one window."""

    def __init__(self, sysfs: Sysfs | str | None = None, clock: Callable[[], float] = time.monotonic):
        """`sysfs`: a Sysfs, or the root directory of a (fake) tree; default the machine's own `/`."""
        self.sysfs = sysfs if isinstance(sysfs, Sysfs) else Sysfs(sysfs or "/")
        self.clock = clock
        self.counters, self.problems = rapl.discover(self.sysfs)

    @property
    def method(self) -> str:
        """The method a window opened now would record (if nothing changes during it)."""
        methods = {c.method for c in self.counters}
        for m in ("rapl-package", "rapl-psys"):
            if m in methods:
                return m
        bats = battery.batteries(self.sysfs)
        if bats and battery.discharging(self.sysfs, bats) and all(
                battery.remaining_uwh(self.sysfs, b)[0] is not None for b in bats):
            return "battery"
        return "none"

    def begin(self) -> "EnergyWindow":
        return EnergyWindow(self)

    def why_no_rapl(self) -> str:
        if any(p.permission for p in self.problems):
            return "RAPL counters are readable by root only (`lqbench join` and `lqbench doctor` say how to allow it)"
        if self.problems:
            return "RAPL counters unreadable: " + "; ".join(p.detail for p in self.problems)
        if self.sysfs.is_real and platform.system() != "Linux":
            return f"no energy counter readable without admin rights on {platform.system()}"
        return "no RAPL counters under /sys/class/powercap"


class EnergyWindow:
    """One measured interval: counters read at `begin`, at most every POLL_S while `poll()` is called, and at `finish`."""

    def __init__(self, meter: EnergyMeter):
        self.meter = meter
        self.t0 = self.last_poll = meter.clock()
        self.rapl = rapl.CounterWindow(meter.sysfs, meter.counters)
        self.battery = battery.BatteryWindow(meter.sysfs)

    def poll(self) -> None:
        """Cheap to call per sample: it reads counters only when POLL_S has passed since the last read."""
        now = self.meter.clock()
        if now - self.last_poll >= POLL_S:
            self.last_poll = now
            self.rapl.poll()
            self.battery.poll()

    def finish(self) -> Energy:
        self.rapl.poll()
        bat_j = self.battery.finish()
        seconds = self.meter.clock() - self.t0
        got = self.rapl.joules()
        domains = {c.domain: round(j, 3) for c, j in got.items()}
        if bat_j is not None:
            domains["battery"] = round(bat_j, 3)
        for method in ("rapl-package", "rapl-psys"):
            mine = [c for c in self.meter.counters if c.method == method]
            if mine and all(c in got for c in mine):
                note = "; ".join(self.rapl.failed.values())
                return Energy(round(sum(got[c] for c in mine), 3), method, seconds, domains, note)
        if bat_j is not None:
            return Energy(round(bat_j, 3), "battery", seconds, domains,
                          f"whole-system battery discharge ({self.battery.how}); {self.meter.why_no_rapl()}")
        reasons = [self.meter.why_no_rapl()] + list(self.rapl.failed.values())
        reasons.append(f"battery: {self.battery.why_not}" if self.battery.why_not else "battery: unreadable")
        return Energy(None, "none", seconds, domains, "; ".join(reasons))


@dataclass(frozen=True)
class _State:
    power: battery.PowerState
    mhz: float | None
    mhz_how: str  # "cpufreq" | "psutil" | ""
    temp_c: float | None
    throttle: int | None


def _read_state(sysfs: Sysfs) -> _State:
    return _State(battery.power_state(sysfs), *state.cpu_mhz(sysfs), state.package_temp_c(sysfs),
                  state.throttle_count(sysfs))


class ShardMeter:
    """Energy and thermal state of one shard. Use as a context manager around the shard's sample loop:

        with ShardMeter() as meter:
            for record in run_shard(...):
                meter.observe(record.gen_tokens, record.gen_ms)
                ...
        ShardRecord(..., **meter.columns())
    """

    def __init__(self, meter: EnergyMeter | None = None, *, sysfs: Sysfs | str | None = None):
        self.meter = meter or EnergyMeter(sysfs)
        self.rates: list[float] = []
        self.energy: Energy | None = None
        self._start: _State | None = None
        self._end: _State | None = None
        self._window: EnergyWindow | None = None

    def __enter__(self) -> "ShardMeter":
        self._start = _read_state(self.meter.sysfs)
        self._window = self.meter.begin()
        return self

    def observe(self, gen_tokens: int, gen_ms: float) -> None:
        """One finished sample: its generation speed (for the drift check); polls the counters when due."""
        if gen_tokens >= state.MIN_DRIFT_TOKENS and gen_ms and gen_ms > 0:
            self.rates.append(gen_tokens * 1000.0 / gen_ms)
        self._window.poll()

    def __exit__(self, *exc) -> bool:
        self.energy = self._window.finish()
        self._end = _read_state(self.meter.sysfs)
        return False

    def columns(self) -> dict:
        """The `shards` columns this meter fills (names as in migration 004)."""
        e, a, b = self.energy, self._start, self._end
        if e is None or a is None or b is None:
            raise RuntimeError("ShardMeter.columns() before the metered block ended")
        events = b.throttle - a.throttle if a.throttle is not None and b.throttle is not None else None
        drift = state.tg_drift(self.rates)
        # Only cpufreq follows the real clock; psutil's fallback can be a nominal figure (/proc/cpuinfo in a
        # VM, sysctl on macOS), recorded but not judged.
        clock_is_real = a.mhz_how == b.mhz_how == "cpufreq"
        throttled, evidence = state.judge_throttling(a.mhz, b.mhz, events, drift, clock_is_real=clock_is_real)
        if a.power.source == b.power.source:
            source = a.power.source
        else:
            source = "mixed"  # plugged in or out during the shard
        return dict(
            energy_j=e.joules, energy_method=e.method, energy_s=round(e.seconds, 3),
            energy_domains_json=json.dumps(e.domains, sort_keys=True) if e.domains else None,
            energy_note=e.note or None,
            power_source=source, battery_pct_start=a.power.battery_pct, battery_pct_end=b.power.battery_pct,
            cpu_mhz_start=a.mhz, cpu_mhz_end=b.mhz, temp_c_start=a.temp_c, temp_c_end=b.temp_c,
            throttle_events=events, tg_drift=drift, throttled=throttled, throttle_evidence=evidence,
        )


def diagnose(sysfs: Sysfs | str | None = None) -> list[tuple[str, str]]:
    """(status, message) lines about this node's energy and thermal meters; status is ok, warn or fail.

    A node without energy counters still benchmarks (its energy is recorded as `none`), so the worst
    a missing meter gets is `warn`; `fail` is kept for a counter that exists and errors when read.
    """
    meter = EnergyMeter(sysfs)
    sysfs = meter.sysfs
    lines: list[tuple[str, str]] = []
    if meter.counters:
        parts = ", ".join(f"{c.domain} ({c.source})" for c in meter.counters)
        lines.append((OK, f"energy: RAPL counters readable: {parts}"))
    lines += rapl.describe_problems(meter.problems)
    if not meter.counters and not meter.problems:
        if sysfs.is_real and platform.system() == "Darwin":
            lines.append((WARN, "energy: no energy counter is readable without admin rights on macOS "
                                "(powermetrics needs sudo); shards record energy method none"))
        elif sysfs.is_real and platform.system() != "Linux":
            lines.append((WARN, f"energy: no energy counter lqbench can read on {platform.system()}; "
                                "shards record energy method none"))
        else:
            lines.append((WARN, "energy: no RAPL counters under /sys/class/powercap (a virtual machine, or a kernel "
                                "without the RAPL driver: `sudo modprobe intel_rapl_msr` loads it on Intel and AMD)"))
    bats = battery.batteries(sysfs)
    for b in bats:
        value, how = battery.remaining_uwh(sysfs, b)
        if value is None:
            lines.append((WARN, f"battery: {how}, so its discharge cannot be measured"))
        else:
            lines.append((OK, f"battery: {b.rsplit('/', 1)[-1]} readable ({how})"))
    power = battery.power_state(sysfs)
    where = {"ac": "on AC power", "battery": "on battery", None: "power source unknown"}[power.source]
    pct = f", battery {power.battery_pct:.0f} %" if power.battery_pct is not None else ""
    method = meter.method
    lines.append((OK if method != "none" else WARN,
                  f"energy: {where}{pct}; a shard here now records method {method}"
                  + ("" if method != "none" else " (no joules: nothing is estimated in their place)")))
    mhz, how = state.cpu_mhz(sysfs)
    temp = state.package_temp_c(sysfs)
    counts = state.throttle_count(sysfs)
    status = OK if (how == "cpufreq" or counts is not None) else WARN
    lines.append((status, "thermal: clock " + (f"{mhz:.0f} MHz from {how}" if mhz else "unreadable")
                  + ("" if how != "psutil" else " (no cpufreq driver: it may not follow the real clock)")
                  + "; package temperature " + (f"{temp:.0f} °C" if temp is not None else "unreadable")
                  + "; kernel throttle counters " + ("readable" if counts is not None else "unreadable")
                  + ("" if status == OK else "; throttling is judged from generation-speed drift alone")))
    return lines
