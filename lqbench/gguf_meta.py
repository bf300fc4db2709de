"""What a GGUF file is, read from its header: architecture, parameter count, quant type, bits per weight.

Also the gatekeeper for model files: `read_gguf_meta` refuses, with one clear line, a
missing file, a file that is not GGUF (bad magic), and a truncated or corrupt one (the
header does not parse, or a tensor's data runs past the end of the file) — before
llama.cpp would crash or mis-load it on some laptop in the middle of a run. The header
is walked here (with the gguf package's tables of tensor type sizes) rather than with
gguf.GGUFReader, which needs ~11 s per file for a 262k-token vocabulary.

The quant names are llama.cpp's (`llama_ftype`), lower-cased as llama-quantize spells them.
They are spelled out here rather than read from `llama_cpp` so that this module (and
`lqbench models`) does not pay for loading llama.cpp; a test checks them against it.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from lqbench.errors import LqbenchError

GGUF_MAGIC = b"GGUF"

# Every llama_ftype a GGUF may declare in `general.file_type`, by lqbench's name for it.
FILE_TYPES: dict[str, int] = {
    "f32": 0,
    "f16": 1,
    "q4_0": 2,
    "q4_1": 3,
    "q8_0": 7,
    "q5_0": 8,
    "q5_1": 9,
    "q2_k": 10,
    "q3_k_s": 11,
    "q3_k_m": 12,
    "q3_k_l": 13,
    "q4_k_s": 14,
    "q4_k_m": 15,
    "q5_k_s": 16,
    "q5_k_m": 17,
    "q6_k": 18,
    "iq2_xxs": 19,
    "iq2_xs": 20,
    "q2_k_s": 21,
    "iq3_xs": 22,
    "iq3_xxs": 23,
    "iq1_s": 24,
    "iq4_nl": 25,
    "iq3_s": 26,
    "iq3_m": 27,
    "iq2_s": 28,
    "iq2_m": 29,
    "iq4_xs": 30,
    "iq1_m": 31,
    "bf16": 32,
    "tq1_0": 36,
    "tq2_0": 37,
}

# llama.cpp refuses these without an importance matrix (llama-quantize says so too); we have none.
NEEDS_IMATRIX = frozenset({"iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq1_s", "iq1_m", "q2_k_s"})

# What `lqbench quantize` and plans can make from a base file. The ternary types only
# make sense for models trained ternary, so they are left out too.
QUANT_TYPES: dict[str, int] = {
    name: ftype for name, ftype in FILE_TYPES.items() if name not in NEEDS_IMATRIX and not name.startswith("tq")
}

FTYPE_NAMES: dict[int, str] = {v: k for k, v in FILE_TYPES.items()}

# Unquantized formats: a ladder made from one of these is a first-generation quantization.
FULL_PRECISION = frozenset({"f32", "f16", "bf16"})


def normalize_quant(quant: str) -> str:
    """'Q4_K_M', 'q4-k-m', ' q4_k_m ' -> 'q4_k_m'; unknown names -> LqbenchError listing the valid ones."""
    name = quant.strip().lower().replace("-", "_")
    if name not in QUANT_TYPES:
        extra = " (needs an importance matrix, which lqbench does not make)" if name in NEEDS_IMATRIX else ""
        raise LqbenchError(f"unknown quant type {quant!r}{extra}; valid: {', '.join(QUANT_TYPES)}")
    return name


@dataclass(frozen=True)
class GGUFMeta:
    path: str
    file_bytes: int
    architecture: str | None
    model_name: str | None  # general.name, as the model's author wrote it
    n_params: int  # sum of all tensors' element counts
    tensor_bytes: int  # bytes of tensor data (the file minus header and padding)
    quant: str  # from general.file_type, else the most common weight type
    file_type: int | None  # the raw llama_ftype, when the file declares one
    n_tensors: int

    @property
    def bits_per_weight(self) -> float | None:
        return 8 * self.tensor_bytes / self.n_params if self.n_params else None


def check_magic(path: str | os.PathLike) -> int:
    """The file's size, after checking it exists and starts with the GGUF magic."""
    p = Path(path)
    if not p.exists():
        raise LqbenchError(f"model file not found: {p}")
    if not p.is_file():
        raise LqbenchError(f"model path is not a file: {p}")
    try:
        with p.open("rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise LqbenchError(f"cannot read model file {p}: {exc.strerror or exc}") from exc
    if magic != GGUF_MAGIC:
        raise LqbenchError(f"not a GGUF file (bad magic {magic!r}): {p}")
    return p.stat().st_size


_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9


class _Truncated(Exception):
    pass


class _HeaderParser:
    """A forward-only reader of a GGUF header over a memory map.

    Why not gguf.GGUFReader: it turns every vocabulary entry into a numpy array, which
    takes ~11 s for Gemma 3's 262k-token vocabulary; here arrays we do not need are
    skipped (strings by their length prefixes), so a header reads in a fraction of a second.
    """

    def __init__(self, buf, order: str):
        self.buf, self.order, self.pos = buf, order, 0

    def take(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise _Truncated(f"header ends at byte {len(self.buf)}")
        (value,) = struct.unpack_from(self.order + fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self, keep: bool = True) -> str | None:
        n = self.take("Q")
        if self.pos + n > len(self.buf):
            raise _Truncated(f"string of {n} bytes runs past the end of the file")
        raw = self.buf[self.pos:self.pos + n] if keep else None
        self.pos += n
        return raw.decode("utf-8", errors="replace") if keep else None

    def value(self, vtype: int, keep: bool):
        if vtype in _SCALARS:
            return self.take(_SCALARS[vtype])
        if vtype == _STRING:
            return self.string(keep)
        if vtype == _ARRAY:
            etype, count = self.take("I"), self.take("Q")
            if etype in _SCALARS:
                size = struct.calcsize(_SCALARS[etype]) * count
                if self.pos + size > len(self.buf):
                    raise _Truncated(f"array of {count} items runs past the end of the file")
                self.pos += size
            else:
                for _ in range(count):
                    self.value(etype, keep=False)
            return None
        raise ValueError(f"unknown metadata value type {vtype}")


def _parse_header(buf) -> tuple[dict, list[tuple[str, int, int, int]], int]:
    """(scalar and string metadata, [(tensor name, ggml type, n_elements, offset)], data start)."""
    if len(buf) < 24:  # magic, version, tensor count, metadata count
        raise _Truncated(f"only {len(buf)} bytes")
    version = struct.unpack_from("<I", buf, 4)[0]
    order = "<" if version < 0x10000 else ">"  # big-endian files show a byte-swapped version
    p = _HeaderParser(buf, order)
    p.pos = 4
    version = p.take("I")
    if version not in (2, 3):
        raise ValueError(f"GGUF version {version} is not supported")
    n_tensors, n_kv = p.take("Q"), p.take("Q")
    if n_tensors > len(buf) or n_kv > len(buf):
        raise ValueError("impossible tensor or metadata count")
    meta: dict = {}
    for _ in range(n_kv):
        key = p.string()
        meta[key] = p.value(p.take("I"), keep=True)
    tensors = []
    for _ in range(n_tensors):
        name = p.string()
        n_dims = p.take("I")
        if n_dims > 8:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        n_elements = 1
        for _ in range(n_dims):
            n_elements *= p.take("Q")
        tensors.append((name, p.take("I"), n_elements, p.take("Q"), n_dims))
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise ValueError(f"invalid alignment {alignment!r}")
    data_start = -(-p.pos // alignment) * alignment
    return meta, tensors, data_start


def read_gguf_meta(path: str | os.PathLike) -> GGUFMeta:
    """Parse the header of a GGUF file; refuse missing, non-GGUF, truncated and corrupt files."""
    import mmap

    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = check_magic(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            meta, tensors, data_start = _parse_header(buf)
    except _Truncated as exc:
        raise LqbenchError(f"truncated GGUF ({exc}): {path}") from None
    except (ValueError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise LqbenchError(f"corrupt GGUF ({exc}): {path}") from None
    if not tensors:
        raise LqbenchError(f"GGUF file has no tensors: {path}")

    n_params = tensor_bytes = end_of_data = 0
    weights: dict[str, int] = {}
    for name, ggml_type, n_elements, offset, n_dims in tensors:
        try:
            qtype = GGMLQuantizationType(ggml_type)
            block, type_size = GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise LqbenchError(f"corrupt GGUF (tensor {name} has unknown type {ggml_type}): {path}") from None
        n_bytes = n_elements * type_size // block
        n_params += n_elements
        tensor_bytes += n_bytes
        end_of_data = max(end_of_data, data_start + offset + n_bytes)
        if n_dims >= 2:  # norms and biases stay F32 in every quant
            weights[qtype.name.lower()] = weights.get(qtype.name.lower(), 0) + n_elements
    if end_of_data > size:
        raise LqbenchError(f"truncated GGUF: tensor data needs {end_of_data} bytes, file has {size}: {path}")

    file_type = meta.get("general.file_type")
    file_type = int(file_type) if isinstance(file_type, int) and not isinstance(file_type, bool) else None
    quant = FTYPE_NAMES.get(file_type) if file_type is not None else None
    if quant is None:  # no declared file type: name it after the type holding most weights
        quant = max(weights, key=weights.get) if weights else "unknown"
    arch, name = meta.get("general.architecture"), meta.get("general.name")
    return GGUFMeta(
        path=str(path),
        file_bytes=size,
        architecture=arch if isinstance(arch, str) else None,
        model_name=name if isinstance(name, str) else None,
        n_params=n_params,
        tensor_bytes=tensor_bytes,
        quant=quant,
        file_type=file_type,
        n_tensors=len(tensors),
    )


@dataclass(frozen=True)
class ChatMeta:
    """What a chat prompt needs from a GGUF: its chat templates and the text of its BOS/EOS tokens."""

    templates: dict  # "" for `tokenizer.chat_template`, else the suffix of `tokenizer.chat_template.<name>`
    bos_token: str  # "" when the file names no BOS token
    eos_token: str
    add_bos: bool | None  # tokenizer.ggml.add_bos_token, when the file says

    @property
    def chat_template(self) -> str | None:
        return self.templates.get("") or None


def _skip_strings(buf, order: str, pos: int, count: int) -> int:
    """The position after `count` length-prefixed strings starting at `pos` (a tight loop: a
    vocabulary has 262k of them)."""
    unpack, fmt, end = struct.unpack_from, order + "Q", len(buf)
    for _ in range(count):
        pos += 8 + unpack(fmt, buf, pos)[0]
        if pos > end:
            raise _Truncated("string array runs past the end of the file")
    return pos


def _token_text(buf, order: str, start: int, count: int, index) -> str:
    """The `index`-th string of the token array that starts at `start`."""
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count:
        return ""
    p = _HeaderParser(buf, order)
    p.pos = _skip_strings(buf, order, start, index)
    return p.string() or ""


def read_chat_meta(path: str | os.PathLike) -> ChatMeta:
    """The chat templates and BOS/EOS texts of a GGUF, read from its header (the vocabulary is walked,
    not decoded, so this stays fast for 262k tokens); the same one-line errors as `read_gguf_meta`."""
    import mmap

    check_magic(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            order = "<" if struct.unpack_from("<I", buf, 4)[0] < 0x10000 else ">"
            p = _HeaderParser(buf, order)
            p.pos = 4
            if p.take("I") not in (2, 3):
                raise ValueError("GGUF version is not supported")
            p.take("Q")
            n_kv = p.take("Q")
            meta: dict = {}
            tokens = (0, 0)
            for _ in range(n_kv):
                key = p.string()
                vtype = p.take("I")
                if vtype == _ARRAY:
                    etype, count = p.take("I"), p.take("Q")
                    if etype == _STRING:  # the vocabulary, merges: walked, not read
                        if key == "tokenizer.ggml.tokens":
                            tokens = (p.pos, count)
                        p.pos = _skip_strings(buf, order, p.pos, count)
                    elif etype in _SCALARS:
                        p.pos += struct.calcsize(_SCALARS[etype]) * count
                    else:
                        for _ in range(count):
                            p.value(etype, keep=False)
                    continue
                meta[key] = p.value(vtype, keep=key.startswith("tokenizer."))
            bos = _token_text(buf, order, *tokens, meta.get("tokenizer.ggml.bos_token_id"))
            eos = _token_text(buf, order, *tokens, meta.get("tokenizer.ggml.eos_token_id"))
    except _Truncated as exc:
        raise LqbenchError(f"truncated GGUF ({exc}): {path}") from None
    except (ValueError, struct.error, UnicodeDecodeError, OverflowError) as exc:
        raise LqbenchError(f"corrupt GGUF ({exc}): {path}") from None
    prefix = "tokenizer.chat_template"
    templates = {}
    for key, value in meta.items():
        if isinstance(value, str) and key == prefix:
            templates[""] = value
        elif isinstance(value, str) and key.startswith(prefix + "."):
            templates[key[len(prefix) + 1:]] = value
    add_bos = meta.get("tokenizer.ggml.add_bos_token")
    return ChatMeta(templates=templates, bos_token=bos, eos_token=eos,
                    add_bos=add_bos if isinstance(add_bos, bool) else None)
