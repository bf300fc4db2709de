"""CPU energy counters: Intel/AMD RAPL through Linux powercap, and AMD's `amd_energy` hwmon driver.

`/sys/class/powercap/intel-rapl:N/energy_uj` is a running counter in microjoules per RAPL domain
(`package-N`, `psys`; sub-zones `intel-rapl:N:M` are `core`, `uncore`, `dram`). AMD Zen CPUs appear in
the same tree through the same driver. The counter wraps to 0 after `max_energy_range_uj`, so a delta is
taken modulo that range, and a long window is read often enough (`CounterWindow.poll`) that no counter
can wrap twice between two reads. Since CVE-2020-8694 the files are root-only on most distributions:
that is a finding to report (see `lqbench.energy.diagnose`), not a reason to estimate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lqbench.energy.base import FAIL, WARN, Sysfs

POWERCAP = "/sys/class/powercap"
HWMON = "/sys/class/hwmon"


@dataclass(frozen=True)
class Counter:
    domain: str  # "package-0", "psys", "package-0/dram", ...
    method: str | None  # "rapl-package" / "rapl-psys" for a domain that can be the total; None for parts
    path: str  # the file holding the running count in microjoules
    wrap_uj: int | None  # the counter returns to 0 after this many microjoules; None = does not wrap / unknown
    source: str  # "powercap" | "hwmon amd_energy"


@dataclass(frozen=True)
class Problem:
    """A counter that exists but cannot be read: which file, and why (permission or other)."""

    path: str
    permission: bool
    detail: str


def _zone_method(name: str) -> str | None:
    if name.startswith("package"):
        return "rapl-package"
    if name == "psys":
        return "rapl-psys"
    return None


def _readable(sysfs: Sysfs, path: str) -> Problem | None:
    try:
        sysfs.read_int(path)
    except PermissionError as exc:
        return Problem(path, True, exc.strerror or "permission denied")
    except (OSError, ValueError) as exc:
        return Problem(path, False, str(exc))
    return None


def discover(sysfs: Sysfs) -> tuple[list[Counter], list[Problem]]:
    """Every RAPL energy counter below the sysfs root that can be read now, and those that cannot."""
    counters: list[Counter] = []
    problems: list[Problem] = []
    zone_names: dict[str, str] = {}
    # intel-rapl-mmio:* repeats the package domain through another interface: counting it would double it.
    for zone in sysfs.glob(f"{POWERCAP}/intel-rapl:*"):
        zone_id = os.path.basename(zone)
        name = sysfs.read_or_none(os.path.join(zone, "name"))
        energy = os.path.join(zone, "energy_uj")
        if name is None or not os.path.exists(energy):
            continue
        zone_names[zone_id] = name
        parent = zone_id.rsplit(":", 1)[0] if zone_id.count(":") > 1 else None
        problem = _readable(sysfs, energy)
        if problem:
            problems.append(problem)
            continue
        wrap = sysfs.int_or_none(os.path.join(zone, "max_energy_range_uj"))
        counters.append(Counter(domain=name if parent is None else f"{zone_names.get(parent, parent)}/{name}",
                                method=_zone_method(name) if parent is None else None, path=energy,
                                wrap_uj=wrap if wrap and wrap > 0 else None, source="powercap"))
    if not any(c.method == "rapl-package" for c in counters) and not any(p.permission for p in problems):
        # AMD's out-of-tree/older-kernel `amd_energy` hwmon driver: per-socket 64-bit accumulators (no wrap).
        for hw in sysfs.glob(f"{HWMON}/hwmon*"):
            if sysfs.read_or_none(os.path.join(hw, "name")) != "amd_energy":
                continue
            for label_path in sysfs.glob_in(hw, "energy*_label"):
                label = sysfs.read_or_none(label_path) or ""
                if not label.startswith("Esocket"):
                    continue  # per-core counters are parts of the socket's
                energy = label_path[: -len("_label")] + "_input"
                problem = _readable(sysfs, energy)
                if problem:
                    problems.append(problem)
                    continue
                counters.append(Counter(domain=f"package-{label[len('Esocket'):]}", method="rapl-package",
                                        path=energy, wrap_uj=None, source="hwmon amd_energy"))
    return counters, problems


class CounterWindow:
    """Joules per counter from one read to the last, wrap-around included.

    `poll()` folds the change since the previous read into a running total; calling it at least once
    per wrap period (minutes at laptop power) keeps the total exact however long the window is.
    """

    def __init__(self, sysfs: Sysfs, counters: list[Counter]):
        self.sysfs = sysfs
        self.total_uj: dict[Counter, int] = {}
        self.last: dict[Counter, int] = {}
        self.failed: dict[Counter, str] = {}
        for c in counters:
            try:
                self.last[c] = sysfs.read_int(c.path)
                self.total_uj[c] = 0
            except (OSError, ValueError) as exc:
                self.failed[c] = f"{c.path}: {exc}"

    def poll(self) -> None:
        for c in list(self.last):
            try:
                value = self.sysfs.read_int(c.path)
            except (OSError, ValueError) as exc:
                self.failed[c] = f"{c.path}: {exc}"
                del self.last[c]
                continue
            step = value - self.last[c]
            if step < 0:
                if c.wrap_uj is None:
                    self.failed[c] = f"{c.path} went backwards and its wrap range is unknown"
                    del self.last[c]
                    continue
                # The counter passed max_energy_range_uj and restarted at 0 (exact to one counter unit).
                step += c.wrap_uj
            self.total_uj[c] += step
            self.last[c] = value

    def joules(self) -> dict[Counter, float]:
        """Joules of every counter that stayed readable throughout."""
        return {c: uj / 1e6 for c, uj in self.total_uj.items() if c not in self.failed}


def permission_fix() -> str:
    """What an administrator runs so lqbench (any user) can read the RAPL counters."""
    return ("to allow it until the next boot: `sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj "
            "/sys/class/powercap/intel-rapl:*:*/energy_uj`; to keep it, a udev rule in "
            "/etc/udev/rules.d/70-lqbench-rapl.rules: "
            "ACTION==\"add\", SUBSYSTEM==\"powercap\", KERNEL==\"intel-rapl:*\", "
            "RUN+=\"/bin/chmod a+r /sys%p/energy_uj\" "
            "(readable energy counters are a power side channel, CVE-2020-8694: grant this on machines you trust)")


def describe_problems(problems: list[Problem]) -> list[tuple[str, str]]:
    """Diagnosis lines for counters that exist but cannot be read."""
    out = []
    denied = [p.path for p in problems if p.permission]
    if denied:
        out.append((WARN, f"energy: RAPL counters are readable by root only ({', '.join(denied)}), so this node "
                          f"records energy method none; {permission_fix()}"))
    for p in problems:
        if not p.permission:
            out.append((FAIL, f"energy: cannot read {p.path}: {p.detail}"))
    return out
