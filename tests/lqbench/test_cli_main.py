"""`lqbench.cli.main`: how the command line ends when a command fails or is interrupted."""

import sys

import pytest


def test_ctrl_c_in_a_command_without_its_own_handling_says_interrupted(monkeypatch, capsys):
    import typer

    from lqbench import cli

    app = typer.Typer()

    @app.command()
    def slow() -> None:
        raise KeyboardInterrupt  # what a Ctrl-C in e.g. `lqbench query` looks like

    @app.command()
    def handled() -> None:
        typer.echo("interrupted: the command's own line", err=True)
        raise typer.Exit(130)

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["lqbench", "slow"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted\n"
    monkeypatch.setattr(sys, "argv", ["lqbench", "handled"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
    assert capsys.readouterr().err == "interrupted: the command's own line\n"  # said once
