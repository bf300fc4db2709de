"""Plans: what to run (models x quants x suites x sampling), read from TOML and checked up front.

A plan is validated completely before anything touches Ray or the database, so a
bad plan costs one error line and nothing else. `DEMO_PLAN` is what `lqbench run`
does with no arguments.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lqbench.errors import LqbenchError

PLACEMENTS = ("spread", "every-node")

# The embedded default: the demo model's quant ladder on the first tasks of the built-in
# suite, greedy as in the reference study. Sized to finish in a few minutes on 2 cores.
DEMO_PLAN: dict = {
    "name": "demo",
    "placement": "spread",
    # One shard per quant: a laptop decoding 8 samples together refills a slot the moment one ends,
    # which only pays while the shard has tasks left to hand out.
    "shard_size": 20,
    "models": [{"spec": "demo:gemma-3-270m", "quants": ["q2_k", "q4_k_m", "q8_0"]}],
    # Easy tasks: a 270M model has a chance there, so the demo's numbers are not all zero.
    "suites": [{"name": "lqbench-lua", "limit": 20, "difficulties": ["easy"]}],
    # A 270M model often rambles to the limit, so the limit decides the demo's length:
    # 60 samples x 256 tokens at ~50 tok/s on 2 cores stays well inside 10 minutes.
    "sampling": {"temperature": 0.0, "max_tokens": 256, "n": 1, "seed": 1234},
    "scoring": {"timeout_s": 5.0, "memory_mb": 256, "lua": "5.4"},
    "inference": {"n_ctx": 2048, "parallel": "auto"},
    # Speed as a user at the keyboard gets it (one stream, llama-bench's pp512/tg128), 3 repetitions.
    "speed": {"reps": 3},
    # A 270M base model passes few tasks at any quant; its distributions show what each quant changes.
    "perplexity": {"corpus": "lqbench-lua", "base": "highest", "n_ctx": 512, "max_tokens": 2048},
}

_TOP_KEYS = {"name", "placement", "shard_size", "models", "suites", "sampling", "scoring", "inference", "perplexity",
             "speed"}
_MODEL_KEYS = {"spec", "name", "quants", "select", "prompt_style", "chat_template", "instruction"}
_SUITE_KEYS = {"name", "limit", "task_ids", "topics", "difficulties"}
_SAMPLING_KEYS = {"temperature", "top_k", "top_p", "max_tokens", "n", "seed", "repeat_penalty"}
_SCORING_KEYS = {"timeout_s", "memory_mb", "lua", "fresh_state"}
_INFERENCE_KEYS = {"n_threads", "n_ctx", "extra_bufts", "max_crashes", "hang_timeout_s", "parallel"}
MAX_PARALLEL = 64  # sequences in one context (llama.cpp allows more; a laptop's memory does not)
_PERPLEXITY_KEYS = {"corpus", "base", "n_ctx", "max_tokens", "with_tests"}
_SPEED_KEYS = {"reps", "n_prompt", "n_gen", "median_prompt", "warmup"}


@dataclass(frozen=True)
class ModelEntry:
    spec: str
    quants: tuple[str, ...]
    name: str = ""
    select: dict = field(default_factory=dict)  # node label selector: {"ram_gb": ">=16", "arch": "x86_64"}
    # lqbench.prompt_styles: "completion" (MultiPL-E) and/or "chat"; both = every sample in each style.
    prompt_styles: tuple[str, ...] = ("completion",)
    chat_template: str = ""  # for a GGUF without tokenizer.chat_template: a named template or Jinja text
    instruction: str = ""  # chat: the instruction template ("" = lqbench.prompt_styles.DEFAULT_INSTRUCTION)


@dataclass(frozen=True)
class SuiteEntry:
    name: str
    limit: int | None = None
    task_ids: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    difficulties: tuple[str, ...] = ()


@dataclass
class Plan:
    name: str
    placement: str
    shard_size: int
    models: list[ModelEntry]
    suites: list[SuiteEntry]
    sampling: dict
    scoring: dict
    inference: dict
    perplexity: dict | None
    raw: dict  # the validated plan as a dict: stored in runs.config_json, re-read on --resume
    speed: dict | None = None  # [speed]: the probe on every node x model file (lqbench.speed)

    @property
    def n_samples(self) -> int:
        return int(self.sampling.get("n", 1))


def _check_keys(where: str, d: dict, allowed: set) -> None:
    if not isinstance(d, dict):
        raise LqbenchError(f"plan: {where} must be a table")
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise LqbenchError(f"plan: unknown key {unknown[0]!r} in {where} (allowed: {', '.join(sorted(allowed))})")


def _typed(where: str, value, kind, *, positive: bool = False):
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise LqbenchError(f"plan: {where} must be {kind.__name__}, got {value!r}")
    if positive and value <= 0:
        raise LqbenchError(f"plan: {where} must be > 0, got {value!r}")
    return value


def _str_list(where: str, value) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LqbenchError(f"plan: {where} must be a list of strings")
    return tuple(value)


def _prompt_settings(i: int, m: dict) -> tuple[tuple[str, ...], str, str]:
    """A model entry's prompt_style (one or a list), chat_template and instruction, checked."""
    from lqbench.prompt_styles import PROMPT_STYLES

    styles = _str_list(f"models[{i}].prompt_style", m.get("prompt_style", "completion"))
    for style in styles:
        if style not in PROMPT_STYLES:
            raise LqbenchError(f"plan: models[{i}].prompt_style must be one of {', '.join(PROMPT_STYLES)}, got {style!r}")
    if not styles or len(set(styles)) != len(styles):
        raise LqbenchError(f"plan: models[{i}].prompt_style must name each style once")
    chat_template = _typed(f"models[{i}].chat_template", m.get("chat_template", ""), str)
    instruction = _typed(f"models[{i}].instruction", m.get("instruction", ""), str)
    for key, value in (("chat_template", chat_template), ("instruction", instruction)):
        if value and "chat" not in styles:
            raise LqbenchError(f"plan: models[{i}].{key} needs prompt_style = \"chat\"")
    if chat_template:
        from lqbench.chat_templates import check_plan_template

        try:
            check_plan_template(chat_template, f"plan: models[{i}].chat_template")
        except LqbenchError as exc:
            raise LqbenchError(str(exc) if str(exc).startswith("plan:") else
                               f"plan: models[{i}].chat_template: {exc}") from None
    if "chat" in styles:
        from lqbench.prompt_styles import DEFAULT_INSTRUCTION, load_instruction

        try:
            load_instruction(instruction or DEFAULT_INSTRUCTION)
        except LqbenchError as exc:
            raise LqbenchError(f"plan: models[{i}].instruction: {exc}") from None
    return styles, chat_template, instruction


def _counts(where: str, value) -> list[int]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise LqbenchError(f"plan: {where} must be a whole number >= 0 or a list of them")
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise LqbenchError(f"plan: {where} must be a whole number >= 0 or a list of them, got {value!r}")
    return list(values)


def _speed_settings(speed, n_ctx: int) -> dict | None:
    """[speed], checked: llama-bench's tests on every node x model file, once per run (lqbench.speed)."""
    if speed is None:
        return None
    from lqbench.speed import DEFAULT_N_GEN, DEFAULT_N_PROMPT, DEFAULT_REPS, plan_tests

    speed = dict(speed)
    _check_keys("[speed]", speed, _SPEED_KEYS)
    speed["reps"] = _typed("speed.reps", speed.get("reps", DEFAULT_REPS), int, positive=True)
    speed["n_prompt"] = _counts("speed.n_prompt", speed.get("n_prompt", [DEFAULT_N_PROMPT]))
    speed["n_gen"] = _counts("speed.n_gen", speed.get("n_gen", [DEFAULT_N_GEN]))
    # A pp test at the median prompt length of the plan's tasks, in each model's own tokens.
    speed["median_prompt"] = _typed("speed.median_prompt", speed.get("median_prompt", True), bool)
    speed["warmup"] = _typed("speed.warmup", speed.get("warmup", True), bool)
    try:
        tests = plan_tests(speed["n_prompt"], speed["n_gen"])
    except LqbenchError as exc:
        raise LqbenchError(f"plan: [speed]: {exc}") from None
    too_big = [t.name for t in tests if t.n_tokens > n_ctx]
    if too_big:  # the probe runs in the context the sweep loads
        raise LqbenchError(f"plan: [speed] test {too_big[0]} needs more than inference.n_ctx = {n_ctx} tokens")
    return speed


def plan_from_dict(raw: dict, *, limit: int | None = None) -> Plan:
    """Validate a plan dict; every problem is an LqbenchError naming the key."""
    raw = copy.deepcopy(raw)
    _check_keys("the plan", raw, _TOP_KEYS)
    name = _typed("name", raw.get("name", "plan"), str)
    placement = raw.get("placement", "spread")
    if placement not in PLACEMENTS:
        raise LqbenchError(f"plan: placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    shard_size = _typed("shard_size", raw.get("shard_size", 8), int, positive=True)

    models_raw = raw.get("models")
    if not models_raw or not isinstance(models_raw, list):
        raise LqbenchError("plan: needs at least one [[models]] entry")
    models = []
    for i, m in enumerate(models_raw):
        _check_keys(f"models[{i}]", m, _MODEL_KEYS)
        if "spec" not in m:
            raise LqbenchError(f"plan: models[{i}] lacks 'spec' (a GGUF path, demo:gemma-3-270m or hf:owner/repo/file.gguf)")
        quants = _str_list(f"models[{i}].quants", m.get("quants", []))
        select = m.get("select", {})
        if not isinstance(select, dict):
            raise LqbenchError(f"plan: models[{i}].select must be a table of label conditions")
        styles, chat_template, instruction = _prompt_settings(i, m)
        models.append(ModelEntry(spec=_typed(f"models[{i}].spec", m["spec"], str), quants=tuple(q.lower() for q in quants),
                                 name=_typed(f"models[{i}].name", m.get("name", ""), str), select=dict(select),
                                 prompt_styles=styles, chat_template=chat_template, instruction=instruction))

    suites_raw = raw.get("suites") or [{"name": "lqbench-lua"}]
    suites = []
    for i, s in enumerate(suites_raw):
        _check_keys(f"suites[{i}]", s, _SUITE_KEYS)
        if "name" not in s:
            raise LqbenchError(f"plan: suites[{i}] lacks 'name'")
        lim = s.get("limit")
        if limit is not None:
            lim = limit if lim is None else min(lim, limit)
            s["limit"] = lim
        suites.append(SuiteEntry(
            name=_typed(f"suites[{i}].name", s["name"], str),
            limit=None if lim is None else _typed(f"suites[{i}].limit", lim, int, positive=True),
            task_ids=_str_list(f"suites[{i}].task_ids", s.get("task_ids", [])),
            topics=_str_list(f"suites[{i}].topics", s.get("topics", [])),
            difficulties=_str_list(f"suites[{i}].difficulties", s.get("difficulties", [])),
        ))
    raw["suites"] = suites_raw

    sampling = dict(raw.get("sampling", {}))
    _check_keys("[sampling]", sampling, _SAMPLING_KEYS)
    sampling.setdefault("temperature", 0.0)
    sampling.setdefault("max_tokens", 1024)
    sampling.setdefault("n", 1)
    sampling.setdefault("seed", 1234)
    _typed("sampling.temperature", sampling["temperature"], float)
    if sampling["temperature"] < 0:
        raise LqbenchError("plan: sampling.temperature must be >= 0")
    _typed("sampling.max_tokens", sampling["max_tokens"], int, positive=True)
    _typed("sampling.n", sampling["n"], int, positive=True)
    _typed("sampling.seed", sampling["seed"], int)
    if sampling["temperature"] == 0:
        sampling["top_k"] = 1  # greedy, as in the reference study
        if sampling["n"] > 1:
            raise LqbenchError("plan: sampling.n > 1 needs temperature > 0 (greedy samples would all be equal)")

    scoring = dict(raw.get("scoring", {}))
    _check_keys("[scoring]", scoring, _SCORING_KEYS)
    scoring.setdefault("timeout_s", 5.0)
    scoring.setdefault("memory_mb", 256)
    scoring.setdefault("lua", "5.4")
    _typed("scoring.timeout_s", scoring["timeout_s"], float, positive=True)
    _typed("scoring.memory_mb", scoring["memory_mb"], int, positive=True)
    scoring["lua"] = str(scoring["lua"])
    if "fresh_state" in scoring:  # absent = ScoreLimits' default (a new state per program); kept out of old plans' JSON
        _typed("scoring.fresh_state", scoring["fresh_state"], bool)

    inference = dict(raw.get("inference", {}))
    _check_keys("[inference]", inference, _INFERENCE_KEYS)
    inference.setdefault("n_ctx", 2048)
    _typed("inference.n_ctx", inference["n_ctx"], int, positive=True)
    if "n_threads" in inference and inference["n_threads"] is not None:
        _typed("inference.n_threads", inference["n_threads"], int, positive=True)
    # Engine failures (lqbench.failures): a (node, model file) whose engine crashes or hangs this many
    # times is excluded; a call that answers nothing for hang_timeout_s is a hang. extra_bufts, when
    # given, is every node's starting configuration (else what `lqbench join` found working there).
    inference.setdefault("max_crashes", 3)
    _typed("inference.max_crashes", inference["max_crashes"], int, positive=True)
    inference.setdefault("hang_timeout_s", 600.0)
    inference["hang_timeout_s"] = _typed("inference.hang_timeout_s", inference["hang_timeout_s"], float,
                                         positive=True)
    if "extra_bufts" in inference:
        _typed("inference.extra_bufts", inference["extra_bufts"], bool)
    # Samples decoded together on a node (lqbench.batched): 1 = one at a time, as before batching;
    # "auto" = as many as the node's memory holds, up to lqbench.batched.AUTO_MAX.
    inference.setdefault("parallel", "auto")
    parallel = inference["parallel"]
    if parallel != "auto" and (isinstance(parallel, bool) or not isinstance(parallel, int)
                               or not 1 <= parallel <= MAX_PARALLEL):
        raise LqbenchError(f"inference.parallel must be \"auto\" or a whole number from 1 to {MAX_PARALLEL}, "
                           f"got {parallel!r}")

    perplexity = raw.get("perplexity")
    if perplexity is not None:
        perplexity = dict(perplexity)
        _check_keys("[perplexity]", perplexity, _PERPLEXITY_KEYS)
        perplexity.setdefault("corpus", "lqbench-lua")  # the suite whose reference programs are the corpus
        perplexity.setdefault("base", "highest")  # a quant of each model, or its most bits per weight
        perplexity.setdefault("n_ctx", 512)
        perplexity.setdefault("with_tests", False)
        _typed("perplexity.corpus", perplexity["corpus"], str)
        perplexity["base"] = _typed("perplexity.base", perplexity["base"], str).lower()
        _typed("perplexity.n_ctx", perplexity["n_ctx"], int, positive=True)
        _typed("perplexity.with_tests", perplexity["with_tests"], bool)
        if perplexity.get("max_tokens") is not None:
            _typed("perplexity.max_tokens", perplexity["max_tokens"], int, positive=True)
        for i, m in enumerate(models):
            if perplexity["base"] != "highest" and perplexity["base"] not in m.quants:
                raise LqbenchError(f"plan: perplexity.base {perplexity['base']!r} is not among models[{i}].quants")
        raw["perplexity"] = perplexity

    speed = _speed_settings(raw.get("speed"), inference["n_ctx"])
    if speed is not None:
        raw["speed"] = speed

    raw.update(name=name, placement=placement, shard_size=shard_size, sampling=sampling, scoring=scoring,
               inference=inference)
    return Plan(name=name, placement=placement, shard_size=shard_size, models=models, suites=suites,
                sampling=sampling, scoring=scoring, inference=inference, perplexity=perplexity, raw=raw, speed=speed)


def load_plan(path: Path | None, *, limit: int | None = None) -> Plan:
    """The plan at `path`, or the demo plan when `path` is None."""
    if path is None:
        return plan_from_dict(DEMO_PLAN, limit=limit)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LqbenchError(f"plan file not found: {path}") from None
    except OSError as exc:
        raise LqbenchError(f"cannot read plan {path}: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise LqbenchError(f"plan {path} is not valid TOML: {exc}") from None
    return plan_from_dict(raw, limit=limit)
