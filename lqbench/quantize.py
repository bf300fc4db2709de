"""Make one quantized GGUF from another with llama.cpp's own quantizer (through llama-cpp-python).

`quantize_file` is the only thing here: one input file, one llama_ftype, one output file,
written to a temporary name and renamed into place so that a crash or a concurrent
process never leaves a half-written model where a reader could load it. Caching and
bookkeeping (which base, which type, requantized or not) live in `lqbench.models`.
"""

from __future__ import annotations

import logging
import os
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
        status = llama_cpp.llama_model_quantize(str(src).encode(), tmp_name.encode(), params)
        if status != 0:
            raise LqbenchError(f"llama.cpp could not quantize {src.name} to {quant} (status {status})")
        os.replace(tmp_name, dst)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return time.perf_counter() - t0
