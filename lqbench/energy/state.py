"""The CPU's thermal state: clock frequency, package temperature, the kernel's thermal-throttle counters,
and the verdict whether a shard was throttled.

Laptops slow down under sustained load (a MacBook Air measured by mlx-lm went from 21.1 to 17.5 tok/s
over five trials), which silently corrupts speed comparisons across nodes. A shard is flagged when the
kernel counted thermal-throttle events during it, when the clock at the end is clearly below the clock
at the start, or when token generation in its last third is clearly slower than in its first third.
"""

from __future__ import annotations

import os
from statistics import median

from lqbench.energy.base import Sysfs

CPU = "/sys/devices/system/cpu"
THERMAL = "/sys/class/thermal"
HWMON = "/sys/class/hwmon"

# A clock this much lower at the end than at the start, or a generation speed this much lower in the
# last third of a shard than in its first third, counts as throttling (run-to-run noise of llama.cpp's
# tg on an idle machine is a few percent).
CLOCK_DROP = 0.90
TG_DRIFT = 0.90
# tg drift needs enough samples per third, and generations long enough for a rate to mean something.
MIN_DRIFT_SAMPLES = 6
MIN_DRIFT_TOKENS = 16


def cpu_mhz(sysfs: Sysfs) -> tuple[float | None, str]:
    """Mean current clock over the CPUs in MHz and its source; psutil only on the real machine."""
    khz = [v for v in (sysfs.int_or_none(p) for p in sysfs.glob(f"{CPU}/cpu[0-9]*/cpufreq/scaling_cur_freq"))
           if v]
    if khz:
        return round(sum(khz) / len(khz) / 1000.0, 1), "cpufreq"
    if sysfs.is_real:
        try:
            import psutil

            freq = psutil.cpu_freq()
        except (ImportError, AttributeError, OSError, NotImplementedError, RuntimeError):
            freq = None
        if freq is not None and freq.current:
            # Linux without cpufreq: /proc/cpuinfo's "cpu MHz" (a VM reports its nominal clock there).
            return round(float(freq.current), 1), "psutil"
    return None, ""


def package_temp_c(sysfs: Sysfs) -> float | None:
    """The CPU package temperature in °C where a driver exposes it (hottest package if several)."""
    temps = []
    for zone in sysfs.glob(f"{THERMAL}/thermal_zone*"):
        if sysfs.read_or_none(os.path.join(zone, "type")) == "x86_pkg_temp":
            t = sysfs.int_or_none(os.path.join(zone, "temp"))
            if t is not None:
                temps.append(t / 1000.0)
    if not temps:
        for hw in sysfs.glob(f"{HWMON}/hwmon*"):
            name = sysfs.read_or_none(os.path.join(hw, "name"))
            if name not in ("coretemp", "k10temp", "zenpower"):
                continue
            for label_path in sysfs.glob_in(hw, "temp*_label"):
                label = sysfs.read_or_none(label_path) or ""
                if label.startswith("Package id") or label in ("Tdie", "Tctl"):
                    t = sysfs.int_or_none(label_path[: -len("_label")] + "_input")
                    if t is not None:
                        temps.append(t / 1000.0)
    return round(max(temps), 1) if temps else None


def throttle_count(sysfs: Sysfs) -> int | None:
    """The kernel's thermal-throttle event count: per package (each CPU repeats its package's) plus per core."""
    packages: dict[str, int] = {}
    cores = 0
    found = False
    for cpu in sysfs.glob(f"{CPU}/cpu[0-9]*"):
        pkg_count = sysfs.int_or_none(os.path.join(cpu, "thermal_throttle", "package_throttle_count"))
        core_count = sysfs.int_or_none(os.path.join(cpu, "thermal_throttle", "core_throttle_count"))
        if pkg_count is None and core_count is None:
            continue
        found = True
        package = sysfs.read_or_none(os.path.join(cpu, "topology", "physical_package_id")) or "0"
        if pkg_count is not None:
            packages[package] = max(packages.get(package, 0), pkg_count)
        cores += core_count or 0
    return sum(packages.values()) + cores if found else None


def tg_drift(rates: list[float]) -> float | None:
    """Median generation speed of the shard's last third ÷ its first third (None below enough samples)."""
    if len(rates) < MIN_DRIFT_SAMPLES:
        return None
    third = len(rates) // 3
    first = median(rates[:third])
    return round(median(rates[-third:]) / first, 3) if first > 0 else None


def judge_throttling(mhz_start: float | None, mhz_end: float | None, events: int | None,
                     drift: float | None, clock_is_real: bool = True) -> tuple[bool | None, str]:
    """(throttled, the evidence): None when there was nothing to judge from.

    A clock that is not known to follow the real frequency (`clock_is_real=False`) is quoted, not judged."""
    evidence, flagged = [], False
    if events is not None:
        evidence.append(f"kernel throttle events +{events}")
        flagged |= events > 0
    judged = False
    if mhz_start and mhz_end:
        if clock_is_real:
            evidence.append(f"clock {mhz_start:.0f}->{mhz_end:.0f} MHz")
            flagged |= mhz_end < CLOCK_DROP * mhz_start
            judged = True
    if drift is not None:
        evidence.append(f"tg last/first third {drift:.2f}")
        flagged |= drift < TG_DRIFT
    judged = judged or events is not None or drift is not None
    if mhz_start and mhz_end and not clock_is_real:
        evidence.append(f"nominal clock {mhz_start:.0f}->{mhz_end:.0f} MHz (not a live reading: not judged)")
    if not judged:
        return None, "; ".join(evidence + ["nothing to judge from: no live clock, throttle counter or "
                                           f"{MIN_DRIFT_SAMPLES}+ samples of {MIN_DRIFT_TOKENS}+ tokens"])
    return flagged, "; ".join(evidence)
