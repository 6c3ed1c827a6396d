"""``python -m vis_core COMMAND``: the engine from the command line, without the UI.

Every command takes the common flags ``--model``, ``--device`` and ``--json`` (a one-line
JSON summary on stdout); those that read an image take ``--image PATH`` (or
``sample:NAME`` for a bundled photo, the default being ``sample:chelsea``).
Bad input exits with status 2 and one line on stderr, never a traceback.

:mod:`.framework` holds the registry and the shared flags and helpers; each command module
registers its commands in :data:`COMMANDS` when imported, in the order ``--help`` lists them.
A new technique adds its command the same way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence

from ..errors import VisCoreError
from .framework import COMMANDS, CliError, Command, Parser, command, common_flags

__all__ = ["COMMANDS", "CliError", "Command", "build_parser", "command", "main"]

#: The command modules, in the order ``--help`` lists their commands (importing one registers them).
COMMAND_MODULES = (
    "inspection_commands",
    "train_command",
    "explanation_commands",
    "optimisation_commands",
    "atlas_command",
)
for _module in COMMAND_MODULES:
    importlib.import_module(f".{_module}", __name__)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered command."""
    parser = Parser(prog="python -m vis_core", description="See inside convolutional neural networks.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, spec in COMMANDS.items():
        child = sub.add_parser(name, help=spec.help, description=spec.help)
        common_flags(child)
        spec.add_arguments(child)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status (0 ok, 2 bad input, 1 unexpected failure)."""
    try:
        args = build_parser().parse_args(argv)
        summary = COMMANDS[args.command].run(args)
    except (CliError, VisCoreError) as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m vis_core layers | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(summary, separators=(",", ":")))
    return 0
