"""The README tells the truth: every setting and every command it names exists."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields
from pathlib import Path

from vesalius.cli.main import build_parser
from vesalius.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_configuration_table_lists_exactly_the_settings() -> None:
    table = [line for line in README.splitlines() if line.startswith("| `")]
    documented = {name for line in table
                  for name in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert documented == {f.name for f in fields(Settings)}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_command_in_the_readme_exists() -> None:
    block = README.split("## The command line", 1)[1].split("```", 2)[1]
    commands = [line.split() for line in block.splitlines() if line.startswith("vesalius ")]
    assert commands
    top = _subcommands(build_parser())
    for words in commands:
        assert words[1] in top, words
        nested = _subcommands(top[words[1]])
        if nested:
            alternatives = [w for w in words[2:] if not w.startswith(("-", "[", "("))][:1]
            assert alternatives and alternatives[0].split("|")[0] in nested, words
