"""The `lqbench quantize` and `lqbench models` commands: progress and tables over `lqbench.models`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from lqbench.errors import LqbenchError


def _stdout_console():
    """Rich on a terminal; a wide console when piped, so tables are not squeezed to 80 columns."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=200)


def _mb(n: int | None) -> str:
    return "?" if n is None else f"{n / 1e6:,.0f} MB"


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.2f} B" if n >= 1e9 else f"{n / 1e6:.0f} M"


def quantize_command(base_spec: str, types: list[str], *, out: Path | None = None, threads: int | None = None) -> list:
    from rich.console import Console
    from rich.table import Table

    from lqbench.gguf_meta import normalize_quant
    from lqbench.models import build_ladder, resolve_model

    if not types:
        raise LqbenchError("--types needs at least one quant type, e.g. q2_k,q4_k_m,q8_0")
    quants = [normalize_quant(t) for t in types]  # every name checked before any work
    console = Console(stderr=True)
    with console.status(f"resolving {base_spec} …"):
        base = resolve_model(base_spec)
    ladder = []
    for q in quants:
        with console.status(f"{base.name}: {q} …"):
            [mf] = build_ladder(base, [q], nthread=threads)
        ladder.append(mf)

    placed = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for mf in ladder:
            target = out / f"{mf.name}.{mf.quant.upper()}.gguf"
            if not (target.exists() and target.stat().st_size == mf.file_bytes and os.path.samefile(target, mf.path)):
                tmp = target.with_name(f".{target.name}.part")
                if tmp.exists():
                    tmp.unlink()
                try:
                    os.link(mf.path, tmp)
                except OSError:
                    shutil.copyfile(mf.path, tmp)
                os.replace(tmp, target)
            placed[mf.sha256] = str(target)

    table = Table(title=f"{base.label} ({_params(base.n_params)} params)")
    for col in ("quant", "size", "bits/weight", "requantized", "sha256", "path"):
        table.add_column(col, justify="right" if col in ("size", "bits/weight") else "left",
                         overflow="fold" if col == "path" else "ellipsis", no_wrap=col != "path")
    for mf in ladder:
        table.add_row(mf.quant, _mb(mf.file_bytes), f"{mf.bits_per_weight:.2f}" if mf.bits_per_weight else "?",
                      "yes" if mf.requantized else "no", mf.sha256[:16], placed.get(mf.sha256, mf.path))
    _stdout_console().print(table)
    if base.requantized or base.quant not in ("f32", "f16", "bf16"):
        console.print(f"note: the base is already {base.quant}; the other quants carry its rounding errors "
                      "(recorded as requantized)")
    return ladder


def models_command(*, verify: bool = False) -> bool:
    """Print the cache; False when something in it is damaged or missing."""
    from rich.console import Console
    from rich.table import Table

    from lqbench.models import list_cache
    from lqbench.paths import model_cache

    console = Console(stderr=True)
    with console.status("hashing every model …" if verify else "reading the cache …"):
        entries = list_cache(verify=verify)
    if not entries:
        console.print(f"no models in {model_cache()} (try: lqbench quantize demo:gemma-3-270m --types q2_k,q8_0)")
        return True
    table = Table(title=f"models in {model_cache()}" + (" (verified)" if verify else ""))
    for col in ("name", "quant", "size", "bits/weight", "params", "arch", "requantized", "sha256", "status"):
        table.add_column(col, justify="right" if col in ("size", "bits/weight", "params") else "left",
                         no_wrap=col != "status", overflow="fold" if col == "status" else "ellipsis")
    for e in sorted(entries, key=lambda e: (e.model.name, -(e.model.bits_per_weight or 0))):
        m = e.model
        table.add_row(m.name, m.quant, _mb(m.file_bytes), f"{m.bits_per_weight:.2f}" if m.bits_per_weight else "?",
                      _params(m.n_params), m.architecture or "?", "yes" if m.requantized else "no", m.sha256[:16],
                      e.status)
    _stdout_console().print(table)
    return all(e.status == "ok" for e in entries)
