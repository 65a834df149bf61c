"""Every ``xds`` command and subcommand prints its help (a bad help text, say unescaped rich
markup such as ``[/prefix]``, would crash it)."""

from __future__ import annotations

from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from xds.cli import app


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        found.append((*prefix, name))
        if hasattr(command, "commands"):  # a group (typer vendors its own click)
            found += _commands(command, (*prefix, name))
    return found


COMMANDS = _commands(typer.main.get_group(app))


def test_the_walk_finds_the_commands() -> None:
    assert {("serve",), ("blobs", "gc"), ("blobs", "verify"), ("db", "upgrade")} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
