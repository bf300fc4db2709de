"""`lqbench doctor`: can this machine run the benchmark right, and if not, why.

Every check that runs native code runs it in a child process (the inference check in an
`EngineProcess`, the Lua checks in scorer worker processes), so a crash is a finding in the
table, not the end of the command. Checks:

- cpu, ram: the CPU model and the ISA extensions llama.cpp's CPU kernels care about; memory;
- engine: llama-cpp-python's version, build id and llama.cpp's own system_info;
- inference: a short greedy generation with the demo model (or --model) in each engine
  configuration (extra buffer types on, then off): tok/s, which buffer types the load used, or
  how it crashed; then which configuration this machine should use;
- lua: one LuaUnit program per Lua version the sandbox supports, through the real scorer;
- energy: which energy, power and thermal meters are readable, and what would fix the rest;
- ray, duckdb, lupa: versions (the CLI adds whether a cluster token is set).

`engine_check` is the inference part alone; `lqbench join` runs it before joining.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, field

from lqbench.engine import DEFAULT, SAFE, EngineConfig, EngineFailure
from lqbench.errors import LqbenchError

# The CPU flags (Linux /proc/cpuinfo names) that decide which llama.cpp kernels can run.
ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx_vnni", "avx512f", "avx512bw", "avx512vl",
             "avx512_vnni", "avx512_bf16", "avx512vbmi", "amx_tile", "amx_int8", "amx_bf16",
             "asimd", "asimddp", "sve", "sve2", "i8mm", "bf16", "sme")

CHECK_PROMPT = "-- Lua: return the sum of a list of numbers\nlocal function sum(xs)\n"
CHECK_TOKENS = 48


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail | info
    detail: str


@dataclass
class InferenceResult:
    config: EngineConfig
    ok: bool
    tok_s: float | None = None  # generation tok/s (llama.cpp's own counters)
    buffer_types: dict = field(default_factory=dict)  # {buffer type: MiB} the load used
    error: str = ""  # how it failed ("crashed: SIGSEGV during generate")


@dataclass
class EngineCheck:
    results: list[InferenceResult]

    @property
    def working(self) -> EngineConfig | None:
        """The configuration to use: the default if it works, else the first that does, else None."""
        return next((r.config for r in self.results if r.ok), None)

    def summary(self) -> str:
        parts = []
        for r in self.results:
            parts.append(f"{r.config.label}: " + (f"{r.tok_s:.1f} tok/s" if r.ok else r.error))
        return "; ".join(parts)


def isa_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    have = set(line.split(":", 1)[1].split())
                    return [flag for flag in ISA_FLAGS if flag in have]
    except OSError:
        pass
    return []


def demo_model_path() -> str:
    from lqbench.models import resolve_model

    return resolve_model("demo:gemma-3-270m").path


def run_inference(model_path: str, config: EngineConfig, *, n_threads: int | None = None,
                  timeout_s: float = 300.0, node_name: str = "") -> InferenceResult:
    """Load `model_path` with `config` in a fresh engine process and generate a few greedy tokens."""
    from lqbench.engine_process import EngineProcess
    from lqbench.generation import SamplingParams
    from lqbench.hardware import physical_cores

    engine = EngineProcess(node_name=node_name, hang_timeout_s=timeout_s, load_timeout_s=timeout_s)
    try:
        engine.load(model_path, config, n_threads=n_threads or physical_cores(), n_ctx=512)
        comp = engine.generate(CHECK_PROMPT, SamplingParams(max_tokens=CHECK_TOKENS))
        tok_s = comp.gen_tokens / comp.gen_ms * 1000 if comp.gen_ms else None
        return InferenceResult(config, True, tok_s=tok_s, buffer_types=dict(engine.load_info.get("buffer_types", {})))
    except EngineFailure as exc:
        return InferenceResult(config, False, error=str(exc))
    except LqbenchError as exc:
        return InferenceResult(config, False, error=f"error: {exc}")
    except RuntimeError as exc:
        return InferenceResult(config, False, error=f"error: {exc}")
    finally:
        engine.close()


def engine_check(model_path: str | None = None, *, n_threads: int | None = None, node_name: str = "",
                 both: bool = False) -> EngineCheck:
    """The inference check: the default configuration, then the safe one if the default failed
    (or always, with `both`, to compare their speed)."""
    path = model_path or demo_model_path()
    results = [run_inference(path, DEFAULT, n_threads=n_threads, node_name=node_name)]
    if both or not results[0].ok:
        results.append(run_inference(path, SAFE, n_threads=n_threads, node_name=node_name))
    return EngineCheck(results)


def _buffers(result: InferenceResult) -> str:
    if not result.buffer_types:
        return ""
    return "; buffers " + ", ".join(f"{k} {v:.0f} MiB" for k, v in sorted(result.buffer_types.items()))


def lua_checks() -> list[Check]:
    """One passing LuaUnit program per supported Lua version, scored by the real sandbox."""
    from lqbench.scorer import LUA_VERSIONS, ScoreLimits, ScorerPool

    program = ("local lu = require('luaunit')\nlocal function add(a, b) return a + b end\n"
               "function test_add() lu.assertEquals(add(2, 3), 5) end\nos.exit(lu.LuaUnit.run())\n")
    out = []
    for version in LUA_VERSIONS:
        try:
            with ScorerPool(jobs=1, limits=ScoreLimits(lua=version, timeout_s=10.0)) as pool:
                verdict = pool.score(program)
            ok = verdict.passed
            out.append(Check(f"lua {version}", "ok" if ok else "fail",
                             f"sandbox verdict {verdict.status} in {verdict.ms:.1f} ms"
                             + ("" if ok else f": {verdict.error}")))
        except Exception as exc:  # a worker that cannot start is this check's finding
            out.append(Check(f"lua {version}", "fail", f"{type(exc).__name__}: {exc}"[:200]))
    return out


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def run_checks(model_path: str | None = None, *, n_threads: int | None = None, lua: bool = True) -> list[Check]:
    import psutil

    from lqbench.hardware import cpu_model, physical_cores

    checks = []
    flags = isa_flags()
    checks.append(Check("cpu", "info", f"{cpu_model()} ({physical_cores()} cores, {platform.machine()}, "
                                       f"{platform.system()} {platform.release()}); "
                                       f"ISA: {' '.join(flags) if flags else 'unknown'}"))
    mem = psutil.virtual_memory()
    checks.append(Check("ram", "ok" if mem.total >= 4 * 2**30 else "warn",
                        f"{mem.total / 2**30:.1f} GiB total, {mem.available / 2**30:.1f} GiB available"))

    # The engine's identity, read in a child process like everything native.
    from lqbench.engine_process import EngineProcess

    try:
        with EngineProcess() as probe:
            info = probe.build_info()
        checks.append(Check("llama-cpp-python", "ok", f"{info['version']} build {info['build_id']}"))
        checks.append(Check("llama.cpp system_info", "info", info["system_info"] or "(empty)"))
        if "AMX_INT8 = 1" in info["system_info"]:
            checks.append(Check("llama.cpp AMX", "info", "this build has AMX kernels, which crash in llama-cpp-python "
                                                         "0.3.36 on some Xeons (SIGSEGV or SIGILL): see the inference "
                                                         "check; ./setup.sh builds without them"))
    except Exception as exc:
        checks.append(Check("llama-cpp-python", "fail", f"cannot load llama.cpp: {exc}"[:300]))
        info = None

    if info is not None:
        try:
            path = model_path or demo_model_path()
        except LqbenchError as exc:
            checks.append(Check("inference", "fail", f"no model to check with: {exc}"))
            path = None
        if path:
            result = engine_check(path, n_threads=n_threads, both=True)
            working = result.working
            for r in result.results:
                detail = (f"{r.tok_s:.1f} gen tok/s{_buffers(r)}" if r.ok else r.error)
                # A configuration that crashes while another works is a finding, not a broken machine.
                status = "ok" if r.ok else ("warn" if working is not None else "fail")
                checks.append(Check(f"inference {r.config.label}", status, detail))
            if working is None:
                checks.append(Check("engine configuration", "fail",
                                    "no configuration runs the model: rebuild llama-cpp-python (./setup.sh) "
                                    "or report the crash above"))
            elif working == DEFAULT:
                checks.append(Check("engine configuration", "ok", f"{working.label} (the default)"))
            else:
                checks.append(Check("engine configuration", "warn",
                                    f"use {working.label}: the default crashed; lqbench join advertises it and "
                                    "lqbench run falls back to it after a crash (rebuild with ./setup.sh to fix)"))

    if lua:
        checks.extend(lua_checks())

    # Energy and thermal meters (lqbench.energy): a node without them still benchmarks (its energy is
    # recorded as `none`), so at worst they warn here, with the fix where there is one.
    from lqbench.energy import diagnose

    for status, message in diagnose():
        name, _, detail = message.partition(": ")
        checks.append(Check(name if detail else "energy", "ok" if status == "ok" else "warn", detail or message))

    for dist in ("ray", "duckdb", "lupa"):
        v = _version(dist)
        checks.append(Check(dist, "ok" if v else "fail", v or "not installed"))
    return checks
