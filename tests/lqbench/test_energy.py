"""lqbench.energy against fake sysfs trees written by each test: RAPL deltas, wrap-around, several domains,
root-only counters, battery discharge, thermal state, and a machine where nothing is readable.

The tests run as root, and root reads a chmod-000 file anyway; a root-only counter is therefore simulated
by an opener that raises PermissionError for it, which is what open() raises for an ordinary user.
"""

from __future__ import annotations

import errno
import os

import pytest

from lqbench.energy import EnergyMeter, ShardMeter, Sysfs, diagnose
from lqbench.energy import battery as battery_mod
from lqbench.energy import meter as meter_mod
from lqbench.energy import state
from lqbench.records import ShardRecord

RANGE = 262_143_328_850  # a real max_energy_range_uj


def write(root, path: str, value) -> None:
    p = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(f"{value}\n")


def rapl_zone(root, zone: str, name: str, uj: int, max_uj: int | None = RANGE) -> str:
    base = f"/sys/class/powercap/{zone}"
    write(root, f"{base}/name", name)
    write(root, f"{base}/energy_uj", uj)
    if max_uj is not None:
        write(root, f"{base}/max_energy_range_uj", max_uj)
    return f"{base}/energy_uj"


def bat(root, name="BAT0", status="Discharging", energy_now=None, energy_full=None, charge_now=None,
        voltage_now=None, capacity=None, scope=None):
    base = f"/sys/class/power_supply/{name}"
    write(root, f"{base}/type", "Battery")
    write(root, f"{base}/status", status)
    for key, v in (("energy_now", energy_now), ("energy_full", energy_full), ("charge_now", charge_now),
                   ("voltage_now", voltage_now), ("capacity", capacity), ("scope", scope)):
        if v is not None:
            write(root, f"{base}/{key}", v)


def mains(root, online: bool):
    write(root, "/sys/class/power_supply/AC/type", "Mains")
    write(root, "/sys/class/power_supply/AC/online", 1 if online else 0)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def denying(*suffixes):
    """An opener that refuses files ending in `suffixes` as open() does for a user without read permission."""
    def opener(path, mode="r"):
        if any(str(path).endswith(s) for s in suffixes):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return open(path, mode)
    return opener


# ------------------------------------------------------------------ RAPL
def test_rapl_package_delta_in_joules(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    clock = Clock()
    meter = EnergyMeter(Sysfs(tmp_path), clock=clock)
    assert meter.method == "rapl-package"
    window = meter.begin()
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 3_500_000)
    clock.t += 10
    e = window.finish()
    assert (e.joules, e.method, e.seconds) == (2.5, "rapl-package", 10)
    assert e.watts == pytest.approx(0.25) and e.domains == {"package-0": 2.5}


def test_rapl_wrap_around_uses_max_energy_range(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", RANGE - 1_000_000)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 500_000)  # passed the top and restarted at 0
    e = window.finish()
    assert e.method == "rapl-package" and e.joules == pytest.approx(1.5)


def test_long_window_polls_so_several_wraps_are_all_counted(tmp_path):
    reads = []

    def counting(path, mode="r"):
        reads.append(os.path.basename(str(path)))
        return open(path, mode)

    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    clock = Clock()
    meter = EnergyMeter(Sysfs(tmp_path, opener=counting), clock=clock)
    window = meter.begin()
    value, true_uj = 0, 0
    for step in range(5):  # 5 x 0.6 of the range: the counter wraps three times
        inc = int(0.6 * RANGE)
        value, true_uj = (value + inc) % RANGE, true_uj + inc
        rapl_zone(tmp_path, "intel-rapl:0", "package-0", value)
        clock.t += 1.0
        before = reads.count("energy_uj")
        window.poll()  # one second later: not due, nothing read
        assert reads.count("energy_uj") == before
        clock.t += meter_mod.POLL_S
        window.poll()  # due: one read of the counter
        assert reads.count("energy_uj") == before + 1
    e = window.finish()
    # one counter unit per wrap is the only slack (the range ends one unit below the true period)
    assert e.joules == pytest.approx(true_uj / 1e6, abs=1e-3)
    # read at begin, finish and only when due: never per call
    assert e.method == "rapl-package"


def test_without_polls_a_double_wrap_cannot_be_seen_which_is_why_poll_exists(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", int(0.2 * RANGE))  # really 1.2 ranges went by
    assert window.finish().joules == pytest.approx(0.2 * RANGE / 1e6, rel=1e-6)


def test_several_domains_total_is_the_packages_parts_are_listed(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 10_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 5_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:1", "dram", 1_000_000)
    rapl_zone(tmp_path, "intel-rapl:1", "package-1", 20_000_000)
    rapl_zone(tmp_path, "intel-rapl:2", "psys", 40_000_000)
    rapl_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 10_000_000)  # same domain again: not counted
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 13_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:0", "core", 7_000_000)
    rapl_zone(tmp_path, "intel-rapl:0:1", "dram", 1_400_000)
    rapl_zone(tmp_path, "intel-rapl:1", "package-1", 24_000_000)
    rapl_zone(tmp_path, "intel-rapl:2", "psys", 50_000_000)
    rapl_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 99_000_000)
    e = window.finish()
    assert e.method == "rapl-package" and e.joules == pytest.approx(7.0)
    assert e.domains == {"package-0": 3.0, "package-0/core": 2.0, "package-0/dram": 0.4, "package-1": 4.0,
                         "psys": 10.0}


def test_psys_alone_is_recorded_as_rapl_psys(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:1", "psys", 0)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    rapl_zone(tmp_path, "intel-rapl:1", "psys", 9_000_000)
    e = window.finish()
    assert (e.method, e.joules) == ("rapl-psys", 9.0)


def test_package_counter_lost_mid_window_falls_back_to_psys(tmp_path):
    pkg = rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    rapl_zone(tmp_path, "intel-rapl:1", "psys", 0)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    os.remove(os.path.join(tmp_path, pkg.lstrip("/")))
    rapl_zone(tmp_path, "intel-rapl:1", "psys", 4_000_000)
    e = window.finish()
    assert (e.method, e.joules) == ("rapl-psys", 4.0) and "energy_uj" in e.note


def test_counter_going_backwards_without_a_known_range_gives_none(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 5_000_000, max_uj=None)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000, max_uj=None)
    e = window.finish()
    assert e.method == "none" and e.joules is None and "wrap range is unknown" in e.note


def test_amd_energy_hwmon_socket_counter(tmp_path):
    hw = "/sys/class/hwmon/hwmon3"
    write(tmp_path, f"{hw}/name", "amd_energy")
    write(tmp_path, f"{hw}/energy1_label", "Ecore000")
    write(tmp_path, f"{hw}/energy1_input", 1)
    write(tmp_path, f"{hw}/energy17_label", "Esocket0")
    write(tmp_path, f"{hw}/energy17_input", 2_000_000)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    write(tmp_path, f"{hw}/energy1_input", 999_999_999)
    write(tmp_path, f"{hw}/energy17_input", 8_000_000)
    e = window.finish()
    assert (e.method, e.joules, e.domains) == ("rapl-package", 6.0, {"package-0": 6.0})


# ------------------------------------------------------------------ permissions
def test_root_only_counters_give_none_and_a_fix(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    rapl_zone(tmp_path, "intel-rapl:1", "psys", 1)
    sysfs = Sysfs(tmp_path, opener=denying("energy_uj"))
    meter = EnergyMeter(sysfs)
    assert meter.counters == [] and {p.permission for p in meter.problems} == {True}
    e = meter.begin().finish()
    assert e.method == "none" and e.joules is None and "root only" in e.note and "battery: no battery" in e.note
    lines = diagnose(sysfs)
    text = " ".join(m for _, m in lines)
    warn = [m for s, m in lines if s == "warn" and "root only" in m]
    assert len(warn) == 1 and "intel-rapl:0/energy_uj" in warn[0] and "intel-rapl:1/energy_uj" in warn[0]
    assert "udev" in warn[0] and "chmod a+r" in warn[0] and "CVE-2020-8694" in warn[0]
    assert "records method none" in text and all(s != "ok" for s, m in lines if m.startswith("energy"))


def test_root_only_counters_on_battery_fall_back_to_battery(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 1)
    bat(tmp_path, energy_now=40_000_000, energy_full=50_000_000)
    sysfs = Sysfs(tmp_path, opener=denying("energy_uj"))
    meter = EnergyMeter(sysfs)
    assert meter.method == "battery"
    window = meter.begin()
    bat(tmp_path, energy_now=39_990_000, energy_full=50_000_000)
    e = window.finish()
    assert e.method == "battery" and e.joules == pytest.approx(36.0) and "root only" in e.note


def test_unreadable_for_another_reason_is_a_failure_line(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", "garbage")
    lines = diagnose(Sysfs(tmp_path))
    assert any(s == "fail" and "cannot read" in m and "intel-rapl:0/energy_uj" in m for s, m in lines)


# ------------------------------------------------------------------ battery
def test_battery_only_discharge(tmp_path):
    bat(tmp_path, energy_now=50_000_000, energy_full=60_000_000, capacity=83)
    mains(tmp_path, online=False)
    sysfs = Sysfs(tmp_path)
    assert battery_mod.power_state(sysfs) == battery_mod.PowerState("battery", 83.3, "sysfs")
    window = EnergyMeter(sysfs).begin()
    bat(tmp_path, energy_now=49_990_000, energy_full=60_000_000)
    e = window.finish()
    assert e.method == "battery" and e.joules == pytest.approx(36.0)  # 10 mWh
    assert e.domains == {"battery": 36.0} and "energy_now" in e.note


def test_battery_charge_and_voltage_when_there_is_no_energy_file(tmp_path):
    bat(tmp_path, charge_now=3_000_000, voltage_now=12_000_000, capacity=60)
    bat(tmp_path, name="hidpp_battery_0", status="Discharging", capacity=10, scope="Device")  # a mouse
    sysfs = Sysfs(tmp_path)
    assert [os.path.basename(b) for b in battery_mod.batteries(sysfs)] == ["BAT0"]
    window = EnergyMeter(sysfs).begin()
    bat(tmp_path, charge_now=2_999_000, voltage_now=12_000_000, capacity=60)
    e = window.finish()
    assert e.method == "battery" and e.joules == pytest.approx(1_000 * 12 * 3.6e-3)  # 1 mAh at 12 V = 12 mWh


def test_battery_on_ac_measures_nothing(tmp_path):
    bat(tmp_path, status="Charging", energy_now=10, energy_full=20)
    mains(tmp_path, online=True)
    sysfs = Sysfs(tmp_path)
    assert battery_mod.power_state(sysfs).source == "ac"
    e = EnergyMeter(sysfs).begin().finish()
    assert e.method == "none" and e.joules is None and "on AC power" in e.note


def test_battery_plugged_in_during_the_window_gives_none(tmp_path):
    bat(tmp_path, energy_now=50_000_000)
    window = EnergyMeter(Sysfs(tmp_path)).begin()
    bat(tmp_path, status="Charging", energy_now=49_000_000)
    e = window.finish()
    assert e.method == "none" and "plugged in" in e.note


def test_battery_counter_that_did_not_move_gives_none_not_zero(tmp_path):
    bat(tmp_path, energy_now=50_000_000)
    e = EnergyMeter(Sysfs(tmp_path)).begin().finish()
    assert e.method == "none" and e.joules is None and "did not move" in e.note


# ------------------------------------------------------------------ nothing readable
def test_nothing_readable_is_an_honest_none(tmp_path):
    sysfs = Sysfs(tmp_path)
    assert not sysfs.is_real and Sysfs("/").is_real
    meter = EnergyMeter(sysfs)
    assert meter.method == "none"
    with ShardMeter(meter) as m:
        for _ in range(3):
            m.observe(100, 2000.0)
    cols = m.columns()
    assert cols["energy_method"] == "none" and cols["energy_j"] is None and cols["energy_domains_json"] is None
    assert "no RAPL counters" in cols["energy_note"] and "no battery" in cols["energy_note"]
    assert all(cols[k] is None for k in ("power_source", "battery_pct_start", "cpu_mhz_start", "temp_c_start",
                                         "throttle_events", "tg_drift", "throttled"))
    assert "nothing to judge from" in cols["throttle_evidence"]
    lines = diagnose(sysfs)
    assert [s for s, _ in lines] == ["warn", "warn", "warn"]
    assert "no RAPL counters under /sys/class/powercap" in lines[0][1] and "modprobe" in lines[0][1]
    assert diagnose(str(tmp_path)) == lines and EnergyMeter(str(tmp_path)).sysfs.root == str(tmp_path)


# ------------------------------------------------------------------ thermal state
def cpus(root, mhz: list[float], pkg_throttle: int | None = None, core_throttle: int | None = None):
    for i, f in enumerate(mhz):
        base = f"/sys/devices/system/cpu/cpu{i}"
        write(root, f"{base}/cpufreq/scaling_cur_freq", int(f * 1000))
        write(root, f"{base}/topology/physical_package_id", 0)
        if pkg_throttle is not None:
            write(root, f"{base}/thermal_throttle/package_throttle_count", pkg_throttle)
            write(root, f"{base}/thermal_throttle/core_throttle_count", core_throttle or 0)


def test_clock_temperature_and_throttle_counters(tmp_path):
    cpus(tmp_path, [3000, 2000], pkg_throttle=7, core_throttle=1)
    write(tmp_path, "/sys/class/thermal/thermal_zone0/type", "acpitz")
    write(tmp_path, "/sys/class/thermal/thermal_zone0/temp", 30000)
    write(tmp_path, "/sys/class/thermal/thermal_zone3/type", "x86_pkg_temp")
    write(tmp_path, "/sys/class/thermal/thermal_zone3/temp", 71500)
    sysfs = Sysfs(tmp_path)
    assert state.cpu_mhz(sysfs) == (2500.0, "cpufreq")
    assert state.package_temp_c(sysfs) == 71.5
    assert state.throttle_count(sysfs) == 7 + 2  # the package's once, each core's own


def test_temperature_from_hwmon_when_there_is_no_pkg_zone(tmp_path):
    write(tmp_path, "/sys/class/hwmon/hwmon1/name", "k10temp")
    write(tmp_path, "/sys/class/hwmon/hwmon1/temp1_label", "Tctl")
    write(tmp_path, "/sys/class/hwmon/hwmon1/temp1_input", 64250)
    write(tmp_path, "/sys/class/hwmon/hwmon2/name", "nvme")
    write(tmp_path, "/sys/class/hwmon/hwmon2/temp1_label", "Composite")
    write(tmp_path, "/sys/class/hwmon/hwmon2/temp1_input", 90000)
    assert state.package_temp_c(Sysfs(tmp_path)) == 64.2


def test_tg_drift_and_the_throttle_verdict():
    assert state.tg_drift([20.0] * 5) is None  # too few samples
    assert state.tg_drift([21.1, 21.0, 20.9, 19.0, 18.0, 17.5, 17.6, 17.4, 17.5]) == pytest.approx(17.5 / 21.0, abs=1e-3)
    assert state.judge_throttling(None, None, None, None) == (None, pytest.approx(
        "nothing to judge from: no live clock, throttle counter or 6+ samples of 16+ tokens"))
    assert state.judge_throttling(3000, 2990, 0, 0.99)[0] is False
    assert state.judge_throttling(3000, 2990, 2, 0.99)[0] is True
    assert state.judge_throttling(3000, 2400, 0, None)[0] is True
    assert state.judge_throttling(None, None, None, 0.83)[0] is True
    # a nominal clock (psutil in a VM) is quoted but not a basis for a verdict
    verdict, evidence = state.judge_throttling(2100, 1500, None, None, clock_is_real=False)
    assert verdict is None and "not judged" in evidence


def test_shard_meter_flags_a_throttled_shard_and_fills_shardrecord(tmp_path):
    rapl_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    cpus(tmp_path, [3000, 3000], pkg_throttle=0)
    write(tmp_path, "/sys/class/thermal/thermal_zone0/type", "x86_pkg_temp")
    write(tmp_path, "/sys/class/thermal/thermal_zone0/temp", 55000)
    bat(tmp_path, status="Discharging", energy_now=30_000_000, energy_full=60_000_000)
    with ShardMeter(sysfs=Sysfs(tmp_path)) as m:
        for rate in [21.1, 21.0, 21.2, 20.0, 19.0, 18.5, 17.6, 17.5, 17.4]:
            m.observe(128, 128 / rate * 1000)
        m.observe(3, 10.0)  # too short a generation to carry a rate
        rapl_zone(tmp_path, "intel-rapl:0", "package-0", 90_000_000)
        cpus(tmp_path, [2200, 2000], pkg_throttle=4)
        write(tmp_path, "/sys/class/thermal/thermal_zone0/temp", 96000)
        bat(tmp_path, status="Discharging", energy_now=29_900_000, energy_full=60_000_000)
    cols = m.columns()
    assert cols["energy_method"] == "rapl-package" and cols["energy_j"] == 90.0
    assert '"battery": 360.0' in cols["energy_domains_json"] and '"package-0": 90.0' in cols["energy_domains_json"]
    assert cols["power_source"] == "battery" and (cols["battery_pct_start"], cols["battery_pct_end"]) == (50.0, 49.8)
    assert (cols["cpu_mhz_start"], cols["cpu_mhz_end"], cols["temp_c_start"], cols["temp_c_end"]) == (
        3000.0, 2100.0, 55.0, 96.0)
    assert cols["throttle_events"] == 4 and cols["tg_drift"] == pytest.approx(17.5 / 21.1, abs=1e-3)
    assert cols["throttled"] is True
    assert cols["throttle_evidence"] == "kernel throttle events +4; clock 3000->2100 MHz; tg last/first third 0.83"
    record = ShardRecord(run_id="r", shard_id="s", node_id="n", model_id="m", suite="x", n_tasks=1, load_ms=None,
                         n_threads=2, started_at="2025-01-01 00:00:00", finished_at="2025-01-01 00:01:00",
                         status="finished", **cols)
    assert set(cols) <= set(ShardRecord.columns()) and record.energy_j == 90.0


def test_shard_meter_steady_on_ac(tmp_path):
    cpus(tmp_path, [2800, 2800], pkg_throttle=3)
    mains(tmp_path, online=True)
    bat(tmp_path, status="Full", capacity=100)
    with ShardMeter(sysfs=Sysfs(tmp_path)) as m:
        for _ in range(9):
            m.observe(64, 3000.0)
    cols = m.columns()
    assert cols["power_source"] == "ac" and cols["battery_pct_start"] == 100.0
    assert cols["throttled"] is False and cols["throttle_events"] == 0 and cols["tg_drift"] == 1.0
    assert cols["energy_method"] == "none" and "on AC power" in cols["energy_note"]


def test_unplugging_during_a_shard_is_recorded_as_mixed(tmp_path):
    mains(tmp_path, online=True)
    bat(tmp_path, status="Charging", capacity=70)
    with ShardMeter(sysfs=Sysfs(tmp_path)) as m:
        mains(tmp_path, online=False)
        bat(tmp_path, status="Discharging", capacity=69)
    assert m.columns()["power_source"] == "mixed"


def test_columns_before_the_block_ends_is_an_error(tmp_path):
    with pytest.raises(RuntimeError):
        ShardMeter(sysfs=Sysfs(tmp_path)).columns()


def test_this_machine(capsys):
    """What the real meters read here, printed for the record; the method must match what exists."""
    meter = EnergyMeter()
    e = meter.begin().finish()
    lines = diagnose()
    print("\n".join(f"{s}: {m}" for s, m in lines))
    print(f"method={e.method} joules={e.joules} note={e.note}")
    has_rapl = any(os.access(p, os.R_OK) for p in Sysfs().glob("/sys/class/powercap/intel-rapl:*/energy_uj"))
    if not has_rapl and not battery_mod.batteries(Sysfs()):
        assert e.method == "none" and e.joules is None
    if e.method == "none":
        assert e.joules is None and e.note
