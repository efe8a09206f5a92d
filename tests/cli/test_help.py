"""Every command's --help shows the defaults of its options."""

import pytest
import typer
from typer.core import TyperOption
from typer.testing import CliRunner

from mlcatalog.cli.app import app

# Typer carries its own copy of click: its classes, not click's, describe the commands.
COMMANDS = typer.main.get_group(app).commands


def help_of(name: str) -> str:
    # Wide enough that Rich wraps no option's line inside its box.
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    return result.output


def shown_defaults(name: str) -> dict[str, str]:
    """Each option's default as the help should print it (options with none to show left out)."""
    shown = {}
    for option in COMMANDS[name].params:
        if not isinstance(option, TyperOption) or option.default is None or option.name == "help":
            continue
        if option.is_flag and isinstance(option.default, bool):
            if not option.secondary_opts:
                continue  # a lone flag: leaving it out is the default
            names = option.opts if option.default else option.secondary_opts
            shown[str(option.name)] = names[0].lstrip("-")
        else:
            shown[str(option.name)] = str(option.default)
    return shown


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_help_of_each_command_shows_its_defaults(name: str) -> None:
    text = help_of(name)
    for option, default in shown_defaults(name).items():
        assert f"[default: {default}]" in text, f"{name} --help hides {option}'s default"


def test_the_defaults_are_read_from_the_commands() -> None:
    assert shown_defaults("serve") == {
        "host": "127.0.0.1",
        "port": "8000",
        "workers": "1",
        "reload": "no-reload",
    }
    assert shown_defaults("demo") == {"seed": "7", "scale": "1"}
    assert shown_defaults("export-schema") == {"output": "schema.graphql"}


def test_serve_help_shows_where_it_listens_by_default() -> None:
    text = help_of("serve")
    assert "[default: 127.0.0.1]" in text
    assert "[default: 8000]" in text
    assert "MLCATALOG_SERVER__PORT" in text
