"""Prompt styles: how a task is put to a model, and how its answer becomes the program that is scored.

- `completion` (the default; MultiPL-E and the reference study): the model continues the task's
  prompt, generation stops at MultiPL-E's stop strings, and the program is prompt + completion + tests.
- `chat`: the task's prompt goes into a chat turn written by a versioned instruction template
  (`lqbench/prompts/instructions/`), rendered with the model's chat template (`lqbench.chat_templates`);
  generation stops at end-of-generation / end-of-turn (never at the completion stop strings, which
  would cut a fenced function at its first blank line); the program is extracted from the reply
  (`lqbench.extraction`). A reply with no code is recorded as `no_code`, not scored.

The head resolves each model's style once, before Ray starts (`resolve_prompts`): a chat model without
a chat template is a plan error there. What it resolved travels in `Shard.prompt` (a plain dict, empty
for completion), so a laptop needs neither the plan nor the GGUF's metadata to build the same prompts.
`PromptStyle` is what `run_shard` calls on the laptop.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lqbench.errors import LqbenchError

PROMPT_STYLES = ("completion", "chat")
DEFAULT_INSTRUCTION = "lua-fence"
INSTRUCTIONS_DIR = Path(__file__).resolve().parent / "prompts" / "instructions"

# Bumped when lqbench.extraction changes what it takes from a reply: part of every instruction_version,
# so results extracted by different rules never look comparable.
EXTRACTION_RULES = "1"

NO_CODE = "no_code"


# ----------------------------------------------------------------- instruction templates
@dataclass(frozen=True)
class Instruction:
    name: str
    user: str
    system: str = ""
    response_prefix: str = ""

    @property
    def version(self) -> str:
        """A hash of everything that shapes the prompt and the extraction (like a suite's version)."""
        content = json.dumps([self.system, self.user, self.response_prefix, EXTRACTION_RULES])
        return hashlib.sha256(content.encode()).hexdigest()[:12]

    @staticmethod
    def _fill(text: str, task) -> str:
        from lqbench.extraction import function_name, normalize_newlines

        # Plain replacement, not str.format: Lua code is full of braces.
        return (text.replace("{prompt}", normalize_newlines(task.prompt).strip("\n"))
                .replace("{function}", function_name(task.prompt) or ""))

    def messages(self, task) -> list[dict]:
        out = [{"role": "system", "content": self._fill(self.system, task)}] if self.system else []
        return out + [{"role": "user", "content": self._fill(self.user, task)}]

    def prefix(self, task) -> str:
        return self._fill(self.response_prefix, task)

    def to_dict(self) -> dict:
        return {"name": self.name, "user": self.user, "system": self.system, "response_prefix": self.response_prefix}


def instruction_names() -> list[str]:
    return sorted(p.stem for p in INSTRUCTIONS_DIR.glob("*.toml"))


def load_instruction(spec: str = DEFAULT_INSTRUCTION) -> Instruction:
    """A built-in instruction template by name, or a TOML file of the same shape by path."""
    path = Path(spec) if spec.endswith(".toml") else INSTRUCTIONS_DIR / f"{spec}.toml"
    if not path.is_file():
        raise LqbenchError(f"unknown instruction {spec!r}; built-in: {', '.join(instruction_names())} "
                           "(or a path to a .toml file)")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LqbenchError(f"instruction {path}: {exc}") from None
    unknown = sorted(set(data) - {"description", "system", "user", "response_prefix"})
    if unknown:
        raise LqbenchError(f"instruction {path}: unknown key {unknown[0]!r}")
    fields = {k: data.get(k, "") for k in ("system", "user", "response_prefix")}
    if not all(isinstance(v, str) for v in fields.values()) or not fields["user"].strip():
        raise LqbenchError(f"instruction {path}: 'user' (text) is required; 'system' and 'response_prefix' are text")
    if "{prompt}" not in fields["user"] + fields["response_prefix"]:
        raise LqbenchError(f"instruction {path}: neither 'user' nor 'response_prefix' contains {{prompt}}")
    return Instruction(name=path.stem, **fields)


# ----------------------------------------------------------------- the head: plan -> shard.prompt
def resolve_prompts(plan, models: list[tuple[dict, dict, int]]) -> list[list[dict]]:
    """For each resolved model file (runner.resolve_models' rows), the `Shard.prompt` of each of its
    plan entry's prompt styles ({} is completion). Raises one line for a chat model with no template."""
    from lqbench.chat_templates import template_for

    out = []
    seen: dict[tuple[str, str], tuple[int, dict]] = {}  # (model file, style) -> (plan entry, its identity)
    for row, _, idx in models:
        entry = plan.models[idx]
        prompts = []
        for style in entry.prompt_styles:
            if style == "completion":
                prompt = {}
            else:
                template = template_for(row["path"], entry.chat_template,
                                        where=f"plan: models[{idx}] ({row['name']} {row['quant']})")
                instruction = load_instruction(entry.instruction or DEFAULT_INSTRUCTION)
                prompt = {"style": "chat", "instruction": instruction.to_dict(),
                          "instruction_version": instruction.version, "chat_template": template.to_dict(),
                          "chat_template_id": template.id}
            # A run holds one sample per model file, task and style: two entries asking for the same file
            # in one style differently (another instruction or template) would silently keep only one.
            first = seen.setdefault((row["model_id"], style), (idx, prompt_identity(prompt)))
            if first[1] != prompt_identity(prompt):
                raise LqbenchError(f"plan: models[{first[0]}] and models[{idx}] both run {row['name']} "
                                   f"{row['quant']} in {style} style, prompted differently; a run keeps one sample "
                                   "per model file, task and style: compare instructions or templates in separate runs")
            prompts.append(prompt)
        out.append(prompts)
    return out


def prompt_identity(prompt: dict) -> dict:
    """What of `Shard.prompt` goes into a shard's id ({} for completion, so old shard ids stay)."""
    if not prompt:
        return {}
    return {"style": prompt["style"], "instruction": prompt["instruction"]["name"],
            "instruction_version": prompt["instruction_version"], "chat_template": prompt["chat_template_id"]}


def record_fields(prompt: dict) -> dict:
    """The samples columns every record of a shard with this `Shard.prompt` carries."""
    if not prompt:
        return {"prompt_style": "completion"}
    return {"prompt_style": prompt["style"], "instruction": prompt["instruction"]["name"],
            "instruction_version": prompt["instruction_version"], "chat_template": prompt["chat_template_id"]}


def style_of(prompt: dict) -> str:
    return prompt.get("style", "completion") if prompt else "completion"


# ----------------------------------------------------------------- the laptop: prompts, stops, scoring
@dataclass
class Scored:
    status: str
    passed: bool
    error: str | None
    ms: float
    extraction: str | None = None  # fence | whole | none (chat only)
    program: str | None = None  # the code scored in front of the tests (chat only)


class PromptStyle:
    """A shard's prompt style on the laptop: the prompt and stops per task, and scoring a reply."""

    def __init__(self, prompt: dict):
        self.raw = prompt or {}
        self.style = style_of(self.raw)
        if self.style not in PROMPT_STYLES:
            raise LqbenchError(f"unknown prompt style {self.style!r}")
        if self.style == "chat":
            from lqbench.chat_templates import ChatTemplate, compile_template

            self.instruction = Instruction(**self.raw["instruction"])
            self.template = ChatTemplate.from_dict(self.raw["chat_template"])
            self._compiled = compile_template(self.template.text, f"chat template {self.template.id}")

    def prompt(self, task) -> str:
        if self.style == "completion":
            return task.prompt
        from lqbench.chat_templates import render

        return render(self.template, self.instruction.messages(task), self._compiled) + self.instruction.prefix(task)

    def stops(self, task) -> list[str]:
        if self.style == "completion":
            return list(task.stop_tokens)
        from lqbench.extraction import fences

        stops = list(self.template.end_of_turn)
        opened = fences(self.instruction.prefix(task))
        if opened and not opened[-1].closed:  # the prefix opened the fence: its closing line ends the answer
            stops.append("\n```")
        return stops

    def request(self, task) -> dict:
        """What to generate for `task`: prompt, stop strings and how to tokenize the prompt. Chat
        prompts hold special-token text (<start_of_turn>, the BOS the template wrote), so they are
        tokenized with special tokens parsed and no BOS added."""
        if self.style == "completion":
            return {"prompt": task.prompt, "stop": list(task.stop_tokens), "special": False, "add_bos": True}
        return {"prompt": self.prompt(task), "stop": self.stops(task), "special": True, "add_bos": False}

    def generate(self, generator, task, params):
        """One generation for `task` (see `request`)."""
        r = self.request(task)
        return generator.generate(r["prompt"], params, r["stop"], special=r["special"], add_bos=r["add_bos"])

    def score(self, scorer, task, reply: str) -> Scored:
        if self.style == "completion":
            v = scorer.score(task.program(reply))
            return Scored(v.status, v.passed, v.error, v.ms)
        from lqbench.extraction import extract, function_name, program_code

        found = extract(self.instruction.prefix(task) + reply, function_name(task.prompt))
        if found.how == "none":
            return Scored(NO_CODE, False, "the reply contains no Lua code", 0.0, extraction="none")
        code = program_code(task.prompt, found)
        v = scorer.score(code + "\n" + task.tests)
        return Scored(v.status, v.passed, v.error, v.ms, extraction=found.how, program=code)
