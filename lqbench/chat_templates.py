"""Chat templates: which one a model's chat prompts use, and rendering it the way llama-cpp-python does.

A chat-style model uses its GGUF's own `tokenizer.chat_template`. A file without one (a base model,
an old conversion) can be given a template by the plan: a name from `lqbench/prompts/chat_templates/`
(`chat_template = "gemma"`) or Jinja text inline. A chat model with neither is a plan error.

Rendering follows llama-cpp-python's `Jinja2ChatFormatter` (itself aligned with Hugging Face
transformers): a sandboxed Jinja2 environment with `trim_blocks`, `lstrip_blocks` and loop controls;
the variables `messages`, `bos_token`, `eos_token` (the text of the model's BOS/EOS tokens),
`add_generation_prompt = True`, and the helpers `raise_exception` and `strftime_now`. The rendered
text is tokenized with special tokens parsed and no BOS added (the template writes its own), again
as llama-cpp-python's chat handlers do.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from lqbench.errors import LqbenchError

NAMED_DIR = Path(__file__).resolve().parent / "prompts" / "chat_templates"


@dataclass(frozen=True)
class ChatTemplate:
    source: str  # "gguf" (the file's own), a named template's name, or "plan" (inline in the plan)
    text: str  # the Jinja template
    bos_token: str = ""
    eos_token: str = ""
    end_of_turn: tuple[str, ...] = field(default=())  # stop strings a named template knows of

    @property
    def id(self) -> str:
        """What samples record: where the template came from and a hash of its text."""
        return f"{self.source}:{hashlib.sha256(self.text.encode()).hexdigest()[:12]}"

    def to_dict(self) -> dict:
        return {"source": self.source, "text": self.text, "bos_token": self.bos_token, "eos_token": self.eos_token,
                "end_of_turn": list(self.end_of_turn)}

    @classmethod
    def from_dict(cls, d: dict) -> "ChatTemplate":
        return cls(source=d["source"], text=d["text"], bos_token=d.get("bos_token", ""),
                   eos_token=d.get("eos_token", ""), end_of_turn=tuple(d.get("end_of_turn", ())))


def named_templates() -> list[str]:
    return sorted(p.stem for p in NAMED_DIR.glob("*.toml"))


def is_inline(spec: str) -> bool:
    """A plan's `chat_template` is Jinja text when it has Jinja syntax, else a template's name."""
    return "{{" in spec or "{%" in spec


def _load_named(name: str) -> dict:
    path = NAMED_DIR / f"{name}.toml"
    if not path.is_file():
        raise LqbenchError(f"unknown chat template {name!r}; named templates: {', '.join(named_templates())} "
                           "(or give the Jinja text itself)")
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _environment():
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    # Templates call tojson on tool schemas; transformers renders it without ASCII escapes.
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, ensure_ascii=False, indent=indent)
    return env


def compile_template(text: str, where: str):
    """The compiled Jinja template, or one line saying why it does not parse."""
    import jinja2

    try:
        return _environment().from_string(text)
    except jinja2.TemplateSyntaxError as exc:
        raise LqbenchError(f"{where}: chat template does not parse (line {exc.lineno}: {exc.message})") from None


def _raise_exception(message):
    raise LqbenchError(f"the chat template refused the conversation: {message}")


def render(template: ChatTemplate, messages: list[dict], compiled=None) -> str:
    """The prompt text for `messages`, ending where the assistant's turn begins."""
    import jinja2

    compiled = compiled or compile_template(template.text, f"chat template {template.id}")
    try:
        return compiled.render(messages=messages, bos_token=template.bos_token, eos_token=template.eos_token,
                               add_generation_prompt=True, raise_exception=_raise_exception,
                               strftime_now=lambda fmt: datetime.now().strftime(fmt))
    except jinja2.TemplateError as exc:
        raise LqbenchError(f"chat template {template.id} failed to render: {exc}") from None


def template_for(model_path: str, plan_template: str = "", *, where: str = "plan") -> ChatTemplate:
    """The chat template a chat-style model uses: its GGUF's own, else the plan's; one line if neither.

    The plan's template fills in for a file without one; a file's own template is what the model was
    trained with, so it wins (the template's `source` in every sample says which was used)."""
    from lqbench.gguf_meta import read_chat_meta

    meta = read_chat_meta(model_path)
    if meta.chat_template:
        chosen = ChatTemplate("gguf", meta.chat_template, meta.bos_token, meta.eos_token)
    elif not plan_template:
        raise LqbenchError(f"{where}: prompt_style = \"chat\" but {Path(model_path).name} has no "
                           "tokenizer.chat_template; give one with chat_template = \"NAME\" "
                           f"({', '.join(named_templates())}) or the Jinja text")
    elif is_inline(plan_template):
        chosen = ChatTemplate("plan", plan_template, meta.bos_token, meta.eos_token)
    else:
        named = _load_named(plan_template)
        chosen = ChatTemplate(plan_template, named["template"], meta.bos_token, meta.eos_token,
                              tuple(named.get("end_of_turn", ())))
    # Render once now, so a template that cannot take a plain user turn fails the plan, not every sample.
    render(chosen, [{"role": "user", "content": "x"}], compile_template(chosen.text, where))
    return chosen


def check_plan_template(spec: str, where: str) -> None:
    """Plan validation: a named template must exist, inline Jinja must parse."""
    if is_inline(spec):
        compile_template(spec, where)
    else:
        _load_named(spec)
