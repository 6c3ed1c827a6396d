"""The README's promises: every engine name and argument its Python section uses exists, and
every command line it shows parses."""

from __future__ import annotations

import ast
import inspect
import re
import shlex
from pathlib import Path

import vis_core
from vis_core.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_name_and_argument_in_the_python_section_exists():
    blocks = re.findall(r"```python\n(.*?)```", _section("Python"), re.S)
    assert blocks
    calls = 0
    for node in ast.walk(ast.parse("\n".join(blocks))):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "vis_core":
            assert hasattr(vis_core, node.attr), f"vis_core.{node.attr} is in the README but not exported"
            assert node.attr in vis_core.__all__
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and owner.id == "vis_core":
                signature = inspect.signature(getattr(vis_core, node.func.attr))
                signature.bind(*node.args, **{keyword.arg: None for keyword in node.keywords})
                calls += 1
    assert calls >= 12


def test_every_command_line_in_the_readme_parses():
    parser = build_parser()
    lines = [line for line in README.splitlines() if line.strip().startswith("python -m vis_core ")]
    assert len(lines) >= 12
    for line in lines:
        argv = shlex.split(line.split("#")[0])[3:]
        parser.parse_args(argv)
