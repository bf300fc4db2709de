"""Taking the Lua program out of a chat model's reply.

A chat reply is prose around markdown code fences, or bare code, or prose only. What gets
scored is decided here, by text alone (nothing is run), in this order:

1. the first ```lua (or unlabeled) fence whose code defines the task's function;
2. else the first such fence that holds code at all (a body without its signature, say);
3. else the whole reply, if any line of it reads as Lua;
4. else nothing: the reply has no code (`none`), a failure of its own, not a syntax error.

The extracted code is the program when it defines the task's function (the model wrote the
whole function, perhaps with helpers); otherwise it is treated like a completion and the task's
prompt (doc comment + signature) goes in front, as MultiPL-E does. The tests follow either way.

A fence opened and never closed (a reply cut at the token limit, or a response prefix that
opened the fence) runs to the end of the reply. Line endings are normalised first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

EXTRACTIONS = ("fence", "whole", "none")

# An opening or closing fence line: ``` or ~~~ (3 or more), then an optional info string.
_FENCE = re.compile(r"^[ \t]*(?P<mark>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*?)[ \t]*$")

# The name of the function a MultiPL-E prompt ends with: `local function name(` or `function name(`.
_PROMPT_FUNCTION = re.compile(r"^[ \t]*(?:local[ \t]+)?function[ \t]+([A-Za-z_][\w.:]*)[ \t]*\(", re.M)

# Lines that read as Lua rather than English. Keywords are lower case in Lua, sentences start upper
# case; the patterns that could also start a sentence ("for each", "return the sum") need Lua's
# own structure around them (`do`, `then`, an operator or nothing after the first word).
_CODE_LINE = [re.compile(p) for p in (
    r"^(?:local[ \t]+)?function\b[^\n]*\(",
    r"^local[ \t]+[A-Za-z_][\w]*(?:[ \t]*,[ \t]*[A-Za-z_]\w*)*[ \t]*(?:=|$)",
    r"^end\b[ \t]*[),;]*[ \t]*(?:--.*)?$",
    r"^(?:if|elseif)\b.*\bthen\b",
    r"^else[ \t]*(?:--.*)?$",
    r"^(?:for|while)\b.*\bdo\b",
    r"^repeat[ \t]*$",
    r"^until\b",
    r"^return(?:[ \t]*;?[ \t]*$|[ \t]+\S+(?:[ \t]*$|[ \t]*[-+*/%^.<>=~,(){}\[\]#;]))",
    r"^[A-Za-z_][\w.]*(?:\[[^\]\n]*\])*[ \t]*=[^=]",
    r"^[A-Za-z_][\w.:]*\([^\n]*\)[ \t]*;?$",
)]


@dataclass(frozen=True)
class Fence:
    label: str  # the info string's first word, lower case ("" for an unlabeled fence)
    code: str
    closed: bool


@dataclass(frozen=True)
class Extraction:
    how: str  # fence | whole | none
    code: str  # what was taken from the reply ("" for none)
    defines: bool  # the code defines the task's function, so it is the program on its own


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def function_name(prompt: str) -> str | None:
    """The function a task's prompt asks for: the last function its prompt declares."""
    names = _PROMPT_FUNCTION.findall(normalize_newlines(prompt))
    return names[-1] if names else None


def defines_function(code: str, name: str | None) -> bool:
    """Does `code` (re)define `name` at the start of a line: `function name(`, `local function name(`,
    or `name = function` / `local name = function`?"""
    if not name:
        return False
    n = re.escape(name)
    return re.search(rf"^[ \t]*(?:local[ \t]+)?function[ \t]+{n}[ \t]*\(|"
                     rf"^[ \t]*(?:local[ \t]+)?{n}[ \t]*=[ \t]*function\b", code, re.M) is not None


def looks_like_lua(text: str) -> bool:
    """At least one line reads as a Lua statement (comments alone do not count)."""
    return any(p.search(line.strip()) for line in text.split("\n") for p in _CODE_LINE)


def fences(text: str) -> list[Fence]:
    """Every fenced block of a markdown text, in order; an unclosed fence runs to the end."""
    out: list[Fence] = []
    lines = normalize_newlines(text).split("\n")
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        mark, info = m.group("mark"), m.group("info")
        label = info.split()[0].lower() if info.split() else ""
        body, closed, j = [], False, i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            # A closing fence: the same character, at least as long, and no info string.
            if close and close.group("mark")[0] == mark[0] and len(close.group("mark")) >= len(mark) \
                    and not close.group("info"):
                closed = True
                break
            body.append(lines[j])
            j += 1
        out.append(Fence(label=label, code="\n".join(body), closed=closed))
        i = j + 1
    return out


def is_lua_label(label: str) -> bool:
    """```lua, ```Lua, ```lua5.4 and unlabeled fences hold the code we want; ```luau is another language."""
    label = label.lstrip("{.").rstrip("}")
    return label == "" or (label.startswith("lua") and not label.startswith("luau"))


def extract(reply: str, name: str | None) -> Extraction:
    """The code to score from a chat reply, for a task whose function is `name` (see the module docstring)."""
    text = normalize_newlines(reply)
    candidates = [f for f in fences(text) if is_lua_label(f.label) and f.code.strip()]
    for f in candidates:
        if defines_function(f.code, name):
            return Extraction("fence", f.code, True)
    for f in candidates:
        if looks_like_lua(f.code):
            return Extraction("fence", f.code, False)
    if text.strip() and looks_like_lua(text):
        return Extraction("whole", text, defines_function(text, name))
    return Extraction("none", "", False)


def program_code(prompt: str, extraction: Extraction) -> str:
    """The code that runs before the tests: the extracted code if it defines the function, else the
    prompt followed by it (MultiPL-E's prompt + completion)."""
    if extraction.defines:
        return extraction.code
    return normalize_newlines(prompt) + extraction.code
