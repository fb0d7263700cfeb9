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


def _first_column(doc: str, heading: str) -> set[str]:
    """Backticked names in the first column of the tables under ``heading``."""
    section = doc.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}


def test_fhir_conformance_matches_the_capability_statement() -> None:
    from vesalius.record.definitions import load
    from vesalius.web.fhir.capability import capability_statement

    doc = (Path(__file__).resolve().parents[2] / "docs/conformance/fhir.md").read_text(
        encoding="utf-8")
    statement = capability_statement(load(), base="http://127.0.0.1/fhir",
                                     referential_integrity=True, date="2026-01-01")
    rest = statement["rest"][0]
    per_type = {i["code"] for r in rest["resource"] for i in r["interaction"]}
    system = {i["code"] for i in rest["interaction"]}
    operations = {o["name"] for r in rest["resource"] for o in r.get("operation", [])}
    assert _first_column(doc, "Interactions") == per_type | system
    assert _first_column(doc, "Operations") == {f"${name}" for name in operations}
    assert all(len(r["interaction"]) == len(per_type) for r in rest["resource"])
    assert statement["fhirVersion"] == "4.0.1"
