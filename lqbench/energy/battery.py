"""The battery: whether the laptop runs on it, how full it is, and the energy it gave up over a window.

Linux exposes `/sys/class/power_supply/BAT*/` with `status` (Discharging, Charging, Full, Not charging),
`capacity` (%), and the remaining energy as `energy_now` (µWh) or, on some batteries, `charge_now` (µAh)
with `voltage_now` (µV). The discharge over a window is the drop in remaining energy while the machine
stays on battery: a whole-system measurement, and a coarse one (firmware refreshes it every few seconds
to a minute), so a window in which it did not move yields no number rather than zero.
Elsewhere (macOS, Windows) only psutil's `sensors_battery()` is readable without admin rights: AC or
battery and the percentage, no energy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lqbench.energy.base import Sysfs

POWER_SUPPLY = "/sys/class/power_supply"


@dataclass(frozen=True)
class PowerState:
    source: str | None  # "ac" | "battery" | None when the machine does not say (a VM, a desktop without ACPI AC)
    battery_pct: float | None
    how: str  # where it came from: "sysfs", "psutil", or "" when nothing was readable


def batteries(sysfs: Sysfs) -> list[str]:
    """System batteries (not a mouse's: those have scope Device)."""
    out = []
    for supply in sysfs.glob(f"{POWER_SUPPLY}/*"):
        if sysfs.read_or_none(os.path.join(supply, "type")) != "Battery":
            continue
        if sysfs.read_or_none(os.path.join(supply, "scope")) == "Device":
            continue
        out.append(supply)
    return out


def remaining_uwh(sysfs: Sysfs, battery: str) -> tuple[float | None, str]:
    """Energy left in one battery in µWh and which files gave it, or (None, why not)."""
    energy = sysfs.int_or_none(os.path.join(battery, "energy_now"))
    if energy is not None:
        return float(energy), "energy_now"
    charge = sysfs.int_or_none(os.path.join(battery, "charge_now"))
    volts = sysfs.int_or_none(os.path.join(battery, "voltage_now"))
    if charge is not None and volts:
        return charge * volts / 1e6, "charge_now x voltage_now"
    return None, f"{battery} has neither energy_now nor charge_now with voltage_now readable"


def discharging(sysfs: Sysfs, bats: list[str]) -> bool:
    return any(sysfs.read_or_none(os.path.join(b, "status")) == "Discharging" for b in bats)


def power_state(sysfs: Sysfs) -> PowerState:
    """AC or battery, and the battery percentage, from sysfs; from psutil where there is no sysfs."""
    supplies = sysfs.glob(f"{POWER_SUPPLY}/*")
    if supplies:
        bats = batteries(sysfs)
        mains_online = any(sysfs.read_or_none(os.path.join(s, "type")) in ("Mains", "USB", "USB_C", "USB_PD")
                           and sysfs.read_or_none(os.path.join(s, "online")) == "1" for s in supplies)
        statuses = {sysfs.read_or_none(os.path.join(b, "status")) for b in bats}
        if "Discharging" in statuses:
            source = "battery"
        elif mains_online or statuses & {"Charging", "Full", "Not charging"}:
            source = "ac"
        else:
            source = None
        pct = _percent(sysfs, bats)
        return PowerState(source, pct, "sysfs")
    if sysfs.is_real:
        try:
            import psutil

            info = psutil.sensors_battery()
        except (ImportError, AttributeError, OSError, RuntimeError):
            info = None
        if info is not None:
            plugged = info.power_plugged
            source = None if plugged is None else ("ac" if plugged else "battery")
            return PowerState(source, round(float(info.percent), 1), "psutil")
    return PowerState(None, None, "")


def _percent(sysfs: Sysfs, bats: list[str]) -> float | None:
    """Charge left over all batteries: by energy where the batteries say it, else the mean capacity."""
    now = full = 0.0
    for b in bats:
        e_now = sysfs.int_or_none(os.path.join(b, "energy_now"))
        e_full = sysfs.int_or_none(os.path.join(b, "energy_full"))
        if e_now is None or not e_full:
            break
        now, full = now + e_now, full + e_full
    else:
        if full:
            return round(100.0 * now / full, 1)
    caps = [c for c in (sysfs.int_or_none(os.path.join(b, "capacity")) for b in bats) if c is not None]
    return round(sum(caps) / len(caps), 1) if caps else None


class BatteryWindow:
    """Energy the batteries gave up between `begin` and `finish`, if the machine stayed on battery."""

    def __init__(self, sysfs: Sysfs):
        self.sysfs = sysfs
        self.bats = batteries(sysfs)
        self.start_uwh: float | None = None
        self.how = ""
        self.why_not = ""
        if not self.bats:
            self.why_not = "no battery"
            return
        if not discharging(sysfs, self.bats):
            self.why_not = "on AC power (the battery is not discharging)"
            return
        self.start_uwh, self.how = self._read()

    def _read(self) -> tuple[float | None, str]:
        total, hows = 0.0, set()
        for b in self.bats:
            value, how = remaining_uwh(self.sysfs, b)
            if value is None:
                self.why_not = how
                return None, ""
            total += value
            hows.add(how)
        return total, " + ".join(sorted(hows))

    def poll(self) -> None:
        """A plug-in during the window makes its discharge meaningless; notice it while it lasts."""
        if self.start_uwh is not None and not discharging(self.sysfs, self.bats):
            self.start_uwh, self.why_not = None, "the power source changed during the window (plugged in)"

    def finish(self) -> float | None:
        """Joules discharged, or None (and `why_not` says why)."""
        self.poll()
        if self.start_uwh is None:
            return None
        end, _ = self._read()
        if end is None:
            return None
        drop = self.start_uwh - end
        if drop <= 0:
            self.why_not = ("the battery's energy counter did not move during the window "
                            "(firmware refreshes it every few seconds to a minute)")
            return None
        return drop * 3.6e-3  # µWh -> J
