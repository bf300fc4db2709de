"""Plan parsing and validation: every mistake is one LqbenchError naming the key."""

import pytest

from lqbench.errors import LqbenchError
from lqbench.plan import DEMO_PLAN, load_plan, plan_from_dict


def test_demo_plan_is_valid_and_greedy():
    plan = load_plan(None)
    assert plan.name == "demo"
    assert plan.sampling["top_k"] == 1 and plan.sampling["temperature"] == 0.0
    assert {q for m in plan.models for q in m.quants} >= {"q2_k", "q4_k_m", "q8_0"}
    assert plan.raw["suites"][0]["name"] == "lqbench-lua"
    # batched, with the probe for speed and a perplexity ladder for what quantization does (issue #13)
    assert plan.inference["parallel"] == "auto" and plan.shard_size >= 2 * 8
    assert plan.speed["reps"] == 3 and plan.perplexity["max_tokens"] == 2048


def test_limit_caps_every_suite():
    plan = load_plan(None, limit=3)
    assert all(s.limit == 3 for s in plan.suites)


def test_plan_from_toml(tmp_path):
    p = tmp_path / "plan.toml"
    p.write_text(
        'name = "mine"\nplacement = "every-node"\nshard_size = 4\n'
        '[[models]]\nspec = "/models/x.gguf"\nquants = ["Q4_K_M"]\nselect = { ram_gb = ">=16" }\n'
        '[[suites]]\nname = "lqbench-lua"\ndifficulties = ["easy"]\n'
        '[sampling]\ntemperature = 0.8\nn = 5\nseed = 7\n'
    )
    plan = load_plan(p)
    assert plan.placement == "every-node" and plan.shard_size == 4
    assert plan.models[0].quants == ("q4_k_m",) and plan.models[0].select == {"ram_gb": ">=16"}
    assert plan.suites[0].difficulties == ("easy",)
    assert plan.n_samples == 5 and plan.sampling["temperature"] == 0.8
    assert "top_k" not in plan.sampling  # only greedy forces top_k 1


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"models": []}, "at least one"),
        ({"models": [{"quants": ["q2_k"]}]}, "lacks 'spec'"),
        ({"models": [{"spec": "x.gguf"}], "placement": "everywhere"}, "placement"),
        ({"models": [{"spec": "x.gguf"}], "sampling": {"temprature": 0.5}}, "temprature"),
        ({"models": [{"spec": "x.gguf"}], "sampling": {"n": 0}}, "sampling.n"),
        ({"models": [{"spec": "x.gguf"}], "sampling": {"n": 3}}, "temperature > 0"),
        ({"models": [{"spec": "x.gguf"}], "bogus": 1}, "bogus"),
        ({"models": [{"spec": "x.gguf"}], "suites": [{"limit": 2}]}, "lacks 'name'"),
        ({"models": [{"spec": "x.gguf", "quants": 4}]}, "list of strings"),
        ({"models": [{"spec": "x.gguf"}], "scoring": {"timeout_s": -1}}, "timeout_s"),
    ],
)
def test_bad_plans_are_one_clear_error(raw, message):
    with pytest.raises(LqbenchError, match=message):
        plan_from_dict(raw)


def test_bad_plan_files(tmp_path):
    with pytest.raises(LqbenchError, match="not found"):
        load_plan(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("models = [ {spec = ")
    with pytest.raises(LqbenchError, match="not valid TOML"):
        load_plan(bad)


def test_demo_plan_constant_is_not_mutated():
    before = repr(DEMO_PLAN)
    load_plan(None, limit=2)
    assert repr(DEMO_PLAN) == before


@pytest.mark.parametrize("value,ok", [("auto", True), (1, True), (8, True), (64, True), (0, False), (65, False),
                                      (2.0, False), (True, False), ("8", False), ("max", False)])
def test_inference_parallel_is_auto_or_a_whole_number(value, ok):
    raw = {**DEMO_PLAN, "inference": {"parallel": value}}
    if ok:
        assert plan_from_dict(raw).inference["parallel"] == value
    else:
        with pytest.raises(LqbenchError, match="inference.parallel must be"):
            plan_from_dict(raw)


def test_parallel_defaults_to_auto():
    assert plan_from_dict(dict(DEMO_PLAN)).inference["parallel"] == "auto"

def test_speed_section_defaults_and_values():
    plan = plan_from_dict({"models": [{"spec": "x.gguf"}], "speed": {}})
    assert plan.speed == {"reps": 5, "n_prompt": [512], "n_gen": [128], "median_prompt": True, "warmup": True}
    assert plan.raw["speed"] == plan.speed  # stored with the run, so --resume probes the same way
    plan = plan_from_dict({"models": [{"spec": "x.gguf"}],
                           "speed": {"reps": 2, "n_prompt": [512, 128], "n_gen": 0, "median_prompt": False}})
    assert (plan.speed["reps"], plan.speed["n_prompt"], plan.speed["n_gen"]) == (2, [512, 128], [0])
    assert plan_from_dict({"models": [{"spec": "x.gguf"}]}).speed is None  # no section, no probe


@pytest.mark.parametrize("speed, message", [
    ({"repetitions": 5}, "unknown key 'repetitions' in \\[speed\\]"),
    ({"reps": 0}, "speed.reps must be > 0"),
    ({"reps": "5"}, "speed.reps must be int"),
    ({"n_prompt": -1}, "speed.n_prompt must be a whole number"),
    ({"n_gen": [128, 1.5]}, "speed.n_gen must be a whole number"),
    ({"n_prompt": 0, "n_gen": 0}, "nothing to run"),
    ({"median_prompt": "yes"}, "speed.median_prompt must be bool"),
    ({"n_prompt": 4096}, "pp4096 needs more than inference.n_ctx = 2048"),
])
def test_bad_speed_sections_are_one_clear_error(speed, message):
    with pytest.raises(LqbenchError, match=message):
        plan_from_dict({"models": [{"spec": "x.gguf"}], "speed": speed})
