"""The head's progress view when stdout is not a terminal: one plain line per shard and lost node."""

from cluster.progress import RunProgress


def test_plain_lines_when_stdout_is_not_a_terminal(capsys):
    with RunProgress(total=5, enabled=True) as view:
        view.advance(1)  # resumed: one sample was done before
        view.started("laptop-a", "gemma q4_k_m")
        view.sample("laptop-a", gen_tokens=50, gen_ms=1000.0)
        view.sample("laptop-a", gen_tokens=50, gen_ms=1000.0)
        view.shard_done("laptop-a")
        view.lost("laptop-b")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("3/5 samples; laptop-a: shard of gemma q4_k_m done (1 shards, 2 samples, 50.0 tok/s per sequence)")
    assert lines[0].startswith("[0:00] ")
    assert lines[1].endswith("3/5 samples; laptop-b: lost")


def test_disabled_view_prints_nothing(capsys):
    with RunProgress(total=2, enabled=False) as view:
        view.started("n", "m")
        view.sample("n", 10, 100.0)
        view.shard_done("n")
    assert capsys.readouterr().out == ""
