"""Prompt styles: chat templates (named, inline, a GGUF's own), instruction templates, plan checks, and a
chat shard through `run_shard` with a fake generator and the real Lua scorer."""

from __future__ import annotations

import pytest

from lqbench.chat_templates import ChatTemplate, _load_named, render, template_for
from lqbench.errors import LqbenchError
from lqbench.gguf_meta import read_chat_meta
from lqbench.plan import plan_from_dict
from lqbench.prompt_styles import PromptStyle, load_instruction, record_fields
from lqbench.shard import make_shards, run_shard
from lqbench.tasks import load_suite

TOKENS = ["<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>", "a", "b"]


def write_gguf(path, template=None, named=None, bos=2, eos=1, add_bos=True):
    """A vocabulary-only GGUF, as llama.cpp's own ggml-vocab-*.gguf test files are."""
    import gguf

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tokenizer_model("llama")
    w.add_token_list(TOKENS)
    w.add_bos_token_id(bos)
    w.add_eos_token_id(eos)
    w.add_add_bos_token(add_bos)
    if template is not None or named:
        w.add_chat_template([{"name": "default", "template": template}] * (template is not None)
                            + [{"name": k, "template": v} for k, v in (named or {}).items()])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def gemma(bos="<bos>", eos="<eos>") -> ChatTemplate:
    named = _load_named("gemma")
    return ChatTemplate("gemma", named["template"], bos, eos, tuple(named["end_of_turn"]))


# ----------------------------------------------------------------- chat templates
def test_gemma_template_renders_the_turns_and_folds_a_system_message():
    assert render(gemma(), [{"role": "user", "content": "Write it.\n"}]) == (
        "<bos><start_of_turn>user\nWrite it.<end_of_turn>\n<start_of_turn>model\n")
    assert render(gemma(), [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Write it."},
                            {"role": "assistant", "content": "Done."}, {"role": "user", "content": "Again."}]) == (
        "<bos><start_of_turn>user\nBe brief.\n\nWrite it.<end_of_turn>\n<start_of_turn>model\nDone.<end_of_turn>\n"
        "<start_of_turn>user\nAgain.<end_of_turn>\n<start_of_turn>model\n")


def test_chatml_and_llama3_templates():
    chatml = ChatTemplate("chatml", _load_named("chatml")["template"], "", "<|im_end|>")
    assert render(chatml, [{"role": "user", "content": "hi"}]) == (
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    llama3 = ChatTemplate("llama3", _load_named("llama3")["template"], "<|begin_of_text|>", "<|eot_id|>")
    assert render(llama3, [{"role": "user", "content": "hi "}]) == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_chat_meta_of_a_gguf(tmp_path):
    meta = read_chat_meta(write_gguf(tmp_path / "m.gguf", "{{ bos_token }}X", named={"tool_use": "T"}))
    assert (meta.bos_token, meta.eos_token, meta.add_bos) == ("<bos>", "<eos>", True)
    assert meta.templates == {"": "{{ bos_token }}X", "tool_use": "T"} and meta.chat_template == "{{ bos_token }}X"
    bare = read_chat_meta(write_gguf(tmp_path / "bare.gguf", bos=5, eos=6, add_bos=False))
    assert (bare.bos_token, bare.eos_token, bare.add_bos, bare.chat_template) == ("a", "b", False, None)
    with pytest.raises(LqbenchError, match="truncated GGUF"):
        (tmp_path / "cut.gguf").write_bytes((tmp_path / "m.gguf").read_bytes()[:120])
        read_chat_meta(tmp_path / "cut.gguf")


def test_the_files_own_template_wins_over_the_plans(tmp_path):
    own = "{{ bos_token }}[{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}{% endfor %}]"
    path = write_gguf(tmp_path / "it.gguf", own)
    chosen = template_for(str(path), "gemma")
    assert chosen.source == "gguf" and chosen.id.startswith("gguf:") and len(chosen.id) == 17
    assert render(chosen, [{"role": "user", "content": "x"}]) == "<bos>[user:x]"


def test_a_file_without_template_takes_the_plans(tmp_path):
    path = str(write_gguf(tmp_path / "base.gguf"))
    named = template_for(path, "gemma")
    assert named.source == "gemma" and named.end_of_turn == ("<end_of_turn>",) and named.bos_token == "<bos>"
    inline = template_for(path, "{% for m in messages %}<{{ m['content'] }}>{% endfor %}")
    assert inline.source == "plan" and render(inline, [{"role": "user", "content": "q"}]) == "<q>"
    assert template_for(path, "gemma").id == named.id  # the id is a content hash: stable


def test_no_template_anywhere_is_one_line(tmp_path):
    path = str(write_gguf(tmp_path / "base.gguf"))
    with pytest.raises(LqbenchError) as exc:
        template_for(path, "", where="plan: models[0] (base q4_k_m)")
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith("plan: models[0]") and "base.gguf" in msg and "chat_template" in msg


def test_bad_plan_templates_fail_early(tmp_path):
    path = str(write_gguf(tmp_path / "base.gguf"))
    with pytest.raises(LqbenchError, match="does not parse"):
        template_for(path, "{% for m in messages %}{{ m }")
    with pytest.raises(LqbenchError, match="unknown chat template 'nope'.*gemma"):
        template_for(path, "nope")
    with pytest.raises(LqbenchError, match="refused the conversation: system first"):
        template_for(path, "{{ raise_exception('system first') }}")


# ----------------------------------------------------------------- instruction templates
def test_builtin_instructions_and_their_versions(tmp_path):
    plain, prefixed = load_instruction("lua-fence"), load_instruction("lua-fence-prefix")
    assert len(plain.version) == 12 and plain.version != prefixed.version
    assert load_instruction("lua-fence").version == plain.version
    edited = tmp_path / "mine.toml"
    edited.write_text('user = """Write Lua:\n{prompt}"""\n')
    mine = load_instruction(str(edited))
    edited.write_text('user = """Write Lua, please:\n{prompt}"""\n')
    assert load_instruction(str(edited)).version != mine.version and mine.name == "mine"


@pytest.mark.parametrize("text, match", [
    ('user = "no placeholder"\n', "contains {prompt}"),
    ('user = "{prompt}"\nextra = 1\n', "unknown key 'extra'"),
    ('system = "x"\n', "'user' .* is required"),
])
def test_bad_instruction_files(tmp_path, text, match):
    (tmp_path / "bad.toml").write_text(text)
    with pytest.raises(LqbenchError, match=match):
        load_instruction(str(tmp_path / "bad.toml"))
    with pytest.raises(LqbenchError, match="unknown instruction 'nope'"):
        load_instruction("nope")


# ----------------------------------------------------------------- plans
def _plan(**model):
    return {"models": [{"spec": "demo:gemma-3-270m", **model}]}


def test_plan_prompt_styles():
    assert plan_from_dict(_plan()).models[0].prompt_styles == ("completion",)
    both = plan_from_dict(_plan(prompt_style=["completion", "chat"], chat_template="gemma"))
    assert both.models[0].prompt_styles == ("completion", "chat") and both.models[0].chat_template == "gemma"
    assert plan_from_dict(_plan(prompt_style="chat", instruction="lua-fence-prefix")).models[0].instruction


@pytest.mark.parametrize("model, match", [
    ({"prompt_style": "instruct"}, r"models\[0\]\.prompt_style must be one of completion, chat"),
    ({"prompt_style": ["chat", "chat"]}, r"models\[0\]\.prompt_style must name each style once"),
    ({"chat_template": "gemma"}, r"models\[0\]\.chat_template needs prompt_style = \"chat\""),
    ({"prompt_style": "chat", "chat_template": "gemmma"}, r"models\[0\]\.chat_template: unknown chat template"),
    ({"prompt_style": "chat", "chat_template": "{% if %}"}, r"models\[0\]\.chat_template: chat template does not"),
    ({"prompt_style": "chat", "instruction": "nope"}, r"models\[0\]\.instruction: unknown instruction"),
])
def test_bad_prompt_settings_are_one_line(model, match):
    with pytest.raises(LqbenchError, match=match) as exc:
        plan_from_dict(_plan(**model))
    assert "\n" not in str(exc.value) and str(exc.value).startswith("plan: ")


# ----------------------------------------------------------------- prompts, stops and scoring
def _chat_prompt(template: ChatTemplate, instruction: str = "lua-fence") -> dict:
    ins = load_instruction(instruction)
    return {"style": "chat", "instruction": ins.to_dict(), "instruction_version": ins.version,
            "chat_template": template.to_dict(), "chat_template_id": template.id}


def _task(task_id="lqb_006_add"):
    suite = load_suite("lqbench-lua")
    return next(p for p in suite.problems if p.task.task_id == task_id)


def test_chat_prompt_and_stops():
    problem = _task()
    style = PromptStyle(_chat_prompt(gemma()))
    prompt = style.prompt(problem.task)
    assert prompt.startswith("<bos><start_of_turn>user\nComplete the following Lua function.")
    assert "```lua\n-- Return the sum of the numbers `a` and `b`." in prompt
    assert prompt.endswith("local function add(a, b)\n```<end_of_turn>\n<start_of_turn>model\n")
    assert style.stops(problem.task) == ["<end_of_turn>"]  # no MultiPL-E stop: "\n\n" would cut a fenced function
    prefixed = PromptStyle(_chat_prompt(gemma(), "lua-fence-prefix"))
    assert prefixed.prompt(problem.task).endswith("<start_of_turn>model\n```lua\n-- Return the sum of the numbers "
                                                  "`a` and `b`.\n-- >>> add(2, 3)\n-- 5\nlocal function add(a, b)")
    assert prefixed.stops(problem.task) == ["<end_of_turn>", "\n```"]  # the prefix opened the fence
    completion = PromptStyle({})
    assert completion.prompt(problem.task) == problem.task.prompt
    assert completion.stops(problem.task) == list(problem.task.stop_tokens)


MODEL = {"model_id": "m" * 16, "sha256": "m" * 64, "quant": "q4_k_m", "name": "demo", "file_bytes": 1}


def test_chat_shard_through_run_shard_with_the_real_scorer():
    """Replies shaped like a chat model's, each scored for real: raw reply, program, extraction, verdict."""
    from lqbench.generation import FakeGenerator
    from lqbench.scorer import ScorerPool

    suite = load_suite("lqbench-lua")
    problems = {p.task.task_id: p for p in suite.problems}
    ids = ["lqb_006_add", "lqb_008_is_even", "lqb_019_double", "lqb_013_max_of_three", "lqb_039_factorial"]
    tasks = [problems[i].task for i in ids]

    def full(task_id, body=None):
        p = problems[task_id]
        return p.task.prompt.strip("\n").splitlines()[-1] + "\n" + (body or p.reference)

    replies = {  # by task: what the "model" answers
        "lqb_006_add": "Sure! Here is the function:\n\n```lua\n" + full("lqb_006_add") + "```\n\nIt adds them.",
        "lqb_008_is_even": "I'm sorry, I can only help with questions about cooking.",
        "lqb_019_double": problems["lqb_019_double"].reference,  # a bare body, as a base model continues
        "lqb_013_max_of_three": "```lua\r\n" + full("lqb_013_max_of_three", problems["lqb_013_max_of_three"].wrong[0])
                                .replace("\n", "\r\n") + "```\r\n",
        "lqb_039_factorial": "```lua\nlocal function fact(n)\n  if n <= 1 then return 1 end\n"
                             "  return n * fact(n - 1)\nend\n```",  # renamed
    }
    template = gemma()
    style = PromptStyle(_chat_prompt(template))
    by_prompt = {style.prompt(t): replies[t.task_id] for t in tasks}
    chat = make_shards("r", [(MODEL, {})], [(suite.name, suite.version, tasks)], sampling={"temperature": 0.0},
                       scoring={}, inference={}, shard_size=10, prompt=_chat_prompt(template))[0]
    completion = make_shards("r", [(MODEL, {})], [(suite.name, suite.version, tasks)],
                             sampling={"temperature": 0.0}, scoring={}, inference={}, shard_size=10)[0]
    gen = FakeGenerator(by_prompt)
    with ScorerPool(jobs=1) as pool:
        records = {r.task_id: r for r in run_shard(chat, gen, pool, node_id="n", n_threads=1)}
    assert gen.tokenization == {"special": True, "add_bos": False, "stop": ["<end_of_turn>"]}
    got = {t: (r.extraction, r.status) for t, r in records.items()}
    assert got == {
        "lqb_006_add": ("fence", "pass"),
        "lqb_008_is_even": ("none", "no_code"),
        "lqb_019_double": ("whole", "pass"),
        "lqb_013_max_of_three": ("fence", got["lqb_013_max_of_three"][1]),
        "lqb_039_factorial": ("fence", "syntax_error"),
    }
    assert got["lqb_013_max_of_three"][1] in ("assertion_failure", "runtime_error")
    for task_id, r in records.items():
        assert r.completion == replies[task_id]  # the raw reply, untouched
        assert (r.prompt_style, r.instruction, r.instruction_version) == (
            "chat", "lua-fence", load_instruction().version)
        assert r.chat_template == template.id and r.key[-1] == "chat"
    add = records["lqb_006_add"]
    assert add.program == full("lqb_006_add").rstrip("\n") and add.passed  # the fence alone: it defines `add`
    assert records["lqb_019_double"].program == problems["lqb_019_double"].task.prompt + replies["lqb_019_double"]
    assert records["lqb_008_is_even"].program is None and records["lqb_008_is_even"].score_ms == 0.0
    assert "\r" not in records["lqb_013_max_of_three"].program
    # the same tasks in completion style are other samples: other keys, another shard
    assert chat.shard_id != completion.shard_id
    assert {k[:-1] for k in chat.sample_keys()} == {k[:-1] for k in completion.sample_keys()}
    assert not set(chat.sample_keys()) & set(completion.sample_keys())


def test_completion_shards_keep_their_ids():
    """A plan without prompt styles makes exactly the shards it made before the field existed."""
    import hashlib
    import json

    suite = load_suite("lqbench-lua")
    shard = make_shards("r", [(MODEL, {})], [(suite.name, suite.version, suite.tasks[:2])],
                        sampling={"temperature": 0.0}, scoring={}, inference={}, shard_size=10)[0]
    ident = {"model_sha256": MODEL["sha256"], "quant": "q4_k_m", "suite": suite.name,
             "suite_version": suite.version, "task_ids": [t.task_id for t in suite.tasks[:2]],
             "sampling": {"temperature": 0.0}, "n_samples": 1, "replica": ""}
    assert shard.shard_id == hashlib.sha256(json.dumps(ident, sort_keys=True, separators=(",", ":"))
                                            .encode()).hexdigest()[:16]
    assert record_fields(shard.prompt) == {"prompt_style": "completion"}


def test_chat_model_without_template_fails_before_ray_with_one_line(tmp_path):
    """`lqbench run` on a plan whose chat model has no chat template (the demo GGUF is a base model):
    exit 2, one line, the results file byte for byte as it was, and Ray never imported."""
    import hashlib
    import subprocess
    import sys

    from tests.lqbench.test_cli_run import _seed_db

    db = tmp_path / "results.duckdb"
    before = _seed_db(db)
    plan = tmp_path / "chat.toml"
    plan.write_text('[[models]]\nspec = "demo:gemma-3-270m"\nquants = ["q4_k_m"]\nprompt_style = "chat"\n')
    script = ("import sys\nfrom lqbench.cli import main\n"
              f"sys.argv = ['lqbench', 'run', {str(plan)!r}, '--db', {str(db)!r}, '--quiet']\n"
              "try:\n    main()\nexcept SystemExit as exc:\n    code = exc.code\n"
              "print(code, 'ray' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: plan: models[0]"), proc.stderr
    assert "has no tokenizer.chat_template" in lines[0] and 'chat_template = "NAME"' in lines[0]
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_one_model_file_in_one_style_two_ways_is_refused(tmp_path):
    """Two plan entries asking for the same file in chat style with different instructions would share
    sample keys (one would silently win): a plan error. The same request twice is harmless."""
    from lqbench.prompt_styles import resolve_prompts

    path = str(write_gguf(tmp_path / "base.gguf"))
    row = {"model_id": "f" * 16, "name": "base", "quant": "f16", "path": path}
    entry = {"spec": path, "prompt_style": ["completion", "chat"], "chat_template": "gemma"}
    same = plan_from_dict({"models": [entry, dict(entry)]})
    prompts = resolve_prompts(same, [(row, {}, 0), (row, {}, 1)])
    assert prompts[0] == prompts[1] and prompts[0][0] == {} and prompts[0][1]["style"] == "chat"
    other = plan_from_dict({"models": [entry, {**entry, "instruction": "lua-fence-prefix"}]})
    with pytest.raises(LqbenchError, match=r"models\[0\] and models\[1\] both run base f16 in chat style"):
        resolve_prompts(other, [(row, {}, 0), (row, {}, 1)])
