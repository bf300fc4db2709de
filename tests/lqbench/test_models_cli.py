"""`lqbench quantize` and `lqbench models` as a user runs them (subprocesses, real files)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from lqbench.models import sha256_file

LQBENCH = [sys.executable, "-m", "lqbench.cli"]


def run_cli(*args, timeout=300):
    return subprocess.run(LQBENCH + list(args), capture_output=True, text=True, timeout=timeout)


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


def test_quantize_demo_ladder_into_a_directory(tmp_path):
    out = tmp_path / "ladder"
    proc = run_cli("quantize", "demo:gemma-3-270m", "--types", "q2_k,Q4_K_M,q8_0", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    files = {p.name: p for p in out.iterdir()}
    assert set(files) == {"gemma-3-270m.Q2_K.gguf", "gemma-3-270m.Q4_K_M.gguf", "gemma-3-270m.Q8_0.gguf"}
    assert files["gemma-3-270m.Q2_K.gguf"].stat().st_size < files["gemma-3-270m.Q8_0.gguf"].stat().st_size
    assert "requantized" in proc.stderr  # the note that the base was already quantized
    listing = run_cli("models")
    assert listing.returncode == 0, listing.stderr
    for quant in ("q2_k", "q4_k_m", "q8_0"):
        assert quant in listing.stdout


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.gguf", "model file not found"),
        (lambda d: (d / "x.gguf").write_bytes(b"\x7fELF not a model") and d / "x.gguf", "not a GGUF file"),
        (lambda d: (d / "t.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x05" * 30) and d / "t.gguf", "GGUF"),
    ],
)
def test_quantize_bad_base_is_one_line(tmp_path, make, expected):
    line = one_error_line(run_cli("quantize", str(make(tmp_path)), "--types", "q2_k"))
    assert expected in line


def test_quantize_unknown_type_is_one_line():
    line = one_error_line(run_cli("quantize", "demo:gemma-3-270m", "--types", "q2_k,q7_k"))
    assert "unknown quant type 'q7_k'" in line and "q4_k_m" in line


def test_models_verify_reports_a_damaged_file(tmp_path, monkeypatch):
    import gguf
    import numpy as np

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("LQBENCH_MODEL_CACHE", str(cache))
    src = tmp_path / "small.gguf"
    w = gguf.GGUFWriter(str(src), arch="llama")
    w.add_file_type(1)
    w.add_tensor("w.weight", np.ones((64, 64), dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    sha = sha256_file(src)
    shutil.copy(src, cache / f"{sha}.gguf")  # e.g. shipped in by the head, no sidecar yet

    first = run_cli("models")
    assert first.returncode == 0, first.stderr
    assert "f16" in first.stdout and sha[:12] in first.stdout

    data = bytearray((cache / f"{sha}.gguf").read_bytes())
    data[-10] ^= 0xFF  # damage the tensor data, keep the size
    (cache / f"{sha}.gguf").write_bytes(bytes(data))
    verified = run_cli("models", "--verify")
    assert verified.returncode == 1
    assert "corrupt" in verified.stdout
