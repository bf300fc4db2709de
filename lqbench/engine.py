"""The inference engine as a thing with an identity: which llama.cpp build, in which configuration.

Laptops differ in llama.cpp version, compile flags and CPU, and one configuration that
works on one laptop can crash on another (llama-cpp-python 0.3.36's AMX kernels segfault
on the first decode of some Xeons). So every result carries the engine that produced it:

- `EngineConfig`: the knobs of a model load that change *which kernels run*. Today that is
  `extra_bufts` — llama.cpp's extra CPU buffer types (weight repacking into AMX tiles or
  interleaved AVX/NEON layouts). `SAFE` turns them off: plain CPU buffers, the path every
  build supports. `label` ("extra_bufts=on") is what samples, shards and nodes record.
- `load_llama`: a `llama_cpp.Llama` loaded with a config. llama-cpp-python has no keyword for
  `use_extra_bufts`, so the load sees default model params with that one field changed.
- `build_info`: version, llama.cpp's `system_info`, and a build id (a hash of the compiled
  libraries), so two laptops with "0.3.36" compiled with different flags are told apart.
- `capture_buffer_types`: which buffer types a load actually used, from llama.cpp's log.

No Ray here; `lqbench.engine_process` runs all of this in a child process.
"""

from __future__ import annotations

import hashlib
import re
import threading
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from lqbench.errors import LqbenchError


@dataclass(frozen=True)
class EngineConfig:
    extra_bufts: bool = True  # llama.cpp's extra CPU buffer types (weight repacking: AMX, CPU_REPACK, KleidiAI)

    @property
    def label(self) -> str:
        return f"extra_bufts={'on' if self.extra_bufts else 'off'}"

    @property
    def is_safe(self) -> bool:
        return self == SAFE

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "EngineConfig":
        d = d or {}
        return cls(extra_bufts=bool(d.get("extra_bufts", True)))

    @classmethod
    def from_label(cls, label: str) -> "EngineConfig":
        m = re.fullmatch(r"extra_bufts=(on|off)", (label or "").strip())
        if not m:
            raise LqbenchError(f"unknown engine configuration {label!r}: expected extra_bufts=on|off")
        return cls(extra_bufts=m.group(1) == "on")


DEFAULT = EngineConfig()
SAFE = EngineConfig(extra_bufts=False)  # what a crash falls back to: the kernels every build has


class EngineFailure(LqbenchError):
    """The engine process died ("crashed") or stopped answering ("hung"); `reason` says how.

    Not a per-sample error: the model is gone, so the shard stops and the scheduler decides."""

    def __init__(self, what: str, reason: str, config: EngineConfig | None = None):
        self.what, self.reason, self.config = what, reason, config
        super().__init__(f"{what}: {reason}")


def fallback(config: EngineConfig) -> EngineConfig | None:
    """The safer configuration to retry with after `config` crashed, or None if it is already the safest."""
    return None if config.is_safe else SAFE


_LOAD_LOCK = threading.Lock()


@contextmanager
def _model_params_with(config: EngineConfig):
    """While loading, llama-cpp-python's default model params carry `config` (it has no keyword for them)."""
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params

    def patched():
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = config.extra_bufts
        elif not config.extra_bufts:
            raise LqbenchError("this llama-cpp-python has no use_extra_bufts model parameter "
                               "(needs >= 0.3.10): the safe engine configuration is not available")
        return params

    with _LOAD_LOCK:
        low.llama_model_default_params = patched
        try:
            yield
        finally:
            low.llama_model_default_params = original


def load_llama(model_path: str, config: EngineConfig = DEFAULT, **kwargs):
    """`llama_cpp.Llama(model_path, **kwargs)` loaded with `config`."""
    import llama_cpp

    with _model_params_with(config):
        return llama_cpp.Llama(model_path=str(model_path), **kwargs)


# ---------------------------------------------------------------- build identity
def system_info() -> str:
    """llama.cpp's "CPU : AVX2 = 1 | ..." line; empty when llama-cpp-python is not importable."""
    try:
        import llama_cpp

        info = llama_cpp.llama_print_system_info()
    except Exception:
        return ""
    return (info.decode("utf-8", "replace") if isinstance(info, bytes) else str(info)).strip()


def _library_files() -> list[Path]:
    import llama_cpp

    lib = Path(llama_cpp.__file__).parent / "lib"
    return sorted(p for p in lib.glob("*") if p.is_file() and (".so" in p.name or p.suffix in (".dylib", ".dll")))


def build_id() -> str:
    """12 hex of the sha256 over the compiled llama.cpp libraries: the same sources built with other
    flags (native vs. a portable set, with or without AMX) get another id."""
    try:
        files = _library_files()
    except Exception:
        return "unknown"
    if not files:
        return "unknown"
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:12]


def build_info() -> dict:
    """{"version", "system_info", "build_id", "label"}: the engine build as recorded on a node."""
    from lqbench.hardware import llama_cpp_version

    version = llama_cpp_version()
    bid = build_id()
    return {"version": version, "system_info": system_info(), "build_id": bid, "label": f"{version}+{bid}"}


# ---------------------------------------------------------------- what a load used
_BUFFER_LINE = re.compile(r"(\S+) model buffer size\s*=\s*([\d.]+) MiB")


def parse_buffer_types(log_text: str) -> dict[str, float]:
    """{buffer type name: MiB} from llama.cpp's load log ("CPU_REPACK model buffer size = 80.0 MiB")."""
    out: dict[str, float] = {}
    for name, mib in _BUFFER_LINE.findall(log_text):
        out[name] = out.get(name, 0.0) + float(mib)
    return out


@contextmanager
def capture_llama_log():
    """Collect llama.cpp's log lines (all levels) into a list while the block runs, instead of printing
    them; llama-cpp-python's own logger is put back afterwards."""
    import ctypes

    import llama_cpp

    lines: list[str] = []

    @llama_cpp.llama_log_callback
    def collect(level, text, user_data):
        try:
            lines.append(text.decode("utf-8", "replace"))
        except Exception:
            pass

    llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
    try:
        yield lines
    finally:
        try:
            from llama_cpp._logger import llama_log_callback as theirs

            llama_cpp.llama_log_set(theirs, ctypes.c_void_p(0))
        except Exception:
            pass
        collect  # keep the callback alive until it is replaced
