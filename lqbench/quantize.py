"""Make one quantized GGUF from another with llama.cpp's own quantizer (through llama-cpp-python).

`quantize_file` is the only thing here: one input file, one llama_ftype, one output file,
written to a temporary name and renamed into place so that a crash or a concurrent
process never leaves a half-written model where a reader could load it. Caching and
bookkeeping (which base, which type, requantized or not) live in `lqbench.models`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

from lqbench.errors import LqbenchError
from lqbench.gguf_meta import QUANT_TYPES, normalize_quant

_backend_ready = False


def _llama_cpp():
    """llama_cpp with its backend initialised once and its chatter routed to the logging module."""
    global _backend_ready
    import llama_cpp

    if not _backend_ready:
        # llama-cpp-python prints llama.cpp's log to stderr unless this logger is above INFO.
        logger = logging.getLogger("llama-cpp-python")
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)
        llama_cpp.llama_backend_init()
        _backend_ready = True
    return llama_cpp


def check_ftypes_match_llama_cpp() -> list[str]:
    """Names in QUANT_TYPES whose number disagrees with llama_cpp's LLAMA_FTYPE_MOSTLY_* (empty = all good)."""
    llama_cpp = _llama_cpp()
    wrong = []
    for name, ftype in QUANT_TYPES.items():
        attr = "LLAMA_FTYPE_ALL_F32" if name == "f32" else f"LLAMA_FTYPE_MOSTLY_{name.upper()}"
        if getattr(llama_cpp, attr, None) != ftype:
            wrong.append(name)
    return wrong


def quantize_file(src: str | os.PathLike, dst: str | os.PathLike, quant: str, nthread: int | None = None) -> float:
    """Quantize `src` to `quant` at `dst` (atomically); returns the seconds it took.

    `allow_requantize` is on: a Q4_K_M demo file can be turned into Q2_K or Q8_0. Such files
    carry the base's rounding errors (a "Q8_0" made from Q4_K_M is no better than the Q4_K_M),
    which is why the caller records them as requantized.
    """
    quant = normalize_quant(quant)
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise LqbenchError(f"model file not found: {src}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    llama_cpp = _llama_cpp()

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = QUANT_TYPES[quant]
    params.allow_requantize = True
    params.nthread = int(nthread) if nthread else 0  # 0: llama.cpp uses every hardware thread

    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    os.close(fd)
    t0 = time.perf_counter()
    try:
        with _captured_stderr() as log:
            status = llama_cpp.llama_model_quantize(str(src).encode(), tmp_name.encode(), params)
        if status != 0:
            reason = _last_error_line(log["text"])
            raise LqbenchError(f"llama.cpp could not quantize {src.name} to {quant}: {reason or f'status {status}'}")
        os.replace(tmp_name, dst)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _captured_stderr():
    """Send the C library's stderr to a temp file for the duration.

    llama.cpp writes a line per tensor while quantizing (hundreds of "falling back to
    q4_0" notes for Gemma's 640-wide rows); the user needs none of it unless it fails.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    captured = {"text": ""}
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured["text"] = sink.read().decode("utf-8", errors="replace")


def _last_error_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "error" in ln.lower() or "failed" in ln.lower()]
    return (errors or lines or [""])[-1][:300]
