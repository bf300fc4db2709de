"""The machine fingerprint and its Ray-label form (pure: no Ray here)."""

import json
import re

import pytest

from lqbench import hardware
from lqbench.errors import LqbenchError

# Kubernetes/Ray label value syntax, written out independently of lqbench.hardware.
K8S_VALUE = re.compile(r"([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?")

SYSTEM_INFO_X86 = ("CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | "
                   "AVX512 = 0 | LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 |")
SYSTEM_INFO_ARM = "CPU : NEON = 1 | ARM_FMA = 1 | FP16_VA = 1 | DOTPROD = 1 | MATMUL_INT8 = 0 | ACCELERATE = 1 |"


def test_fingerprint_has_the_nodes_columns_and_a_stable_id():
    a = hardware.fingerprint(measure_bandwidth=False, name="lap1")
    b = hardware.fingerprint(measure_bandwidth=False, name="lap1")
    other = hardware.fingerprint(measure_bandwidth=False, name="lap2")
    for column in ("node_id", "hostname", "cpu_model", "physical_cores", "logical_cores", "ram_gb", "os", "arch",
                   "mem_bandwidth_gbs", "llama_cpp_version", "labels_json"):
        assert column in a
    assert a["node_id"] == b["node_id"] != other["node_id"]
    assert a["physical_cores"] >= 1 and a["logical_cores"] >= a["physical_cores"]
    assert a["mem_bandwidth_gbs"] is None
    assert json.loads(a["labels_json"]) == {"name": "lap1"}


def test_llama_cpp_system_info_reports_cpu_features_when_llama_cpp_is_installed():
    pytest.importorskip("llama_cpp")
    info = hardware.llama_cpp_system_info()
    assert "CPU" in info and "=" in info


def test_measured_bandwidth_is_positive():
    assert hardware.measure_mem_bandwidth_gbs(mb=16, repeats=1) > 0


@pytest.mark.parametrize("info, expected", [
    (SYSTEM_INFO_X86, ["AVX", "AVX2", "FMA", "F16C"]),
    (SYSTEM_INFO_ARM, ["NEON", "ARM_FMA", "FP16_VA", "DOTPROD"]),
    ("", []),
])
def test_simd_features_keep_enabled_speed_relevant_flags_only(info, expected):
    assert hardware.simd_features(info) == expected


@pytest.mark.parametrize("raw, expected", [
    ("Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", "Intel_R_Core_TM_i5-8250U_CPU_1.60GHz"),
    ("Apple M2 Pro", "Apple_M2_Pro"),
    ("  -lead and trail-  ", "lead_and_trail"),
    ("", ""),
    (23.5, "23.5"),
])
def test_label_value_makes_valid_label_values(raw, expected):
    assert hardware.label_value(raw) == expected
    assert K8S_VALUE.fullmatch(expected)


def test_label_value_truncates_to_63_with_alphanumeric_end():
    value = hardware.label_value("x" * 62 + "-yz" + "w" * 10)
    assert len(value) <= 63 and K8S_VALUE.fullmatch(value)


def test_fingerprint_survives_the_trip_through_labels():
    fp = hardware.fingerprint(measure_bandwidth=False, labels={"team": "ml"}, name="lap1")
    fp["mem_bandwidth_gbs"] = 12.34
    fp["llama_cpp_system_info"] = SYSTEM_INFO_X86
    labels = hardware.fingerprint_labels(fp, threads=3)
    assert all(K8S_VALUE.fullmatch(v) and len(v) <= 63 for v in labels.values())
    assert labels["lqbench-name"] == "lap1" and labels["team"] == "ml"
    assert labels["lqbench-simd"] == "avx-avx2-fma-f16c" and labels["lqbench-threads"] == "3"
    back = hardware.fingerprint_from_labels({**labels, "ray.io/node-id": "abc"})
    assert back["node_id"] == fp["node_id"]
    assert back["physical_cores"] == fp["physical_cores"] and back["ram_gb"] == fp["ram_gb"]
    assert back["mem_bandwidth_gbs"] == 12.34 and back["threads"] == 3
    assert json.loads(back["labels_json"]) == {"name": "lap1", "team": "ml"}


def test_split_labels_separates_ours_the_users_and_drops_rays():
    ours, user = hardware.split_labels({"lqbench-name": "a", "team": "ml", "ray.io/node-id": "x"})
    assert ours == {"lqbench-name": "a"} and user == {"team": "ml"}


def test_parse_label_args_accepts_kubernetes_style_labels():
    assert hardware.parse_label_args(["team=ml", "example.com/room=2", "empty="]) == {
        "team": "ml", "example.com/room": "2", "empty": ""}


@pytest.mark.parametrize("arg", ["noequals", "=v", "lqbench-cpu=x", "ray.io/gpu=a", "name=x", "bad key=1",
                                 "team=has space", "team=" + "v" * 64, "-team=1"])
def test_parse_label_args_refuses_what_ray_would_reject_or_we_reserve(arg):
    with pytest.raises(LqbenchError):
        hardware.parse_label_args([arg])
