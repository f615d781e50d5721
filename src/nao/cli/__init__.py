"""The ``nao`` command: parse flags, build components from the registries, call the library.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and a ``run(args)``
registered via ``set_defaults(func=run)``; :data:`nao.registry.COMMANDS` lists the modules (and takes
plug-in commands). Errors caused by user input
(:class:`nao.errors.NaoError`) print one line on stderr and exit with code 2.

>>> from nao.cli import build_parser
>>> build_parser().prog
'nao'
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from nao import __version__
from nao.errors import NaoError
from nao.registry import COMMANDS


class _Parser(argparse.ArgumentParser):
    """argparse with the project's error format (one line, exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every subcommand."""
    parser = _Parser(prog="nao", description="Neural Architecture Optimization")
    parser.add_argument("--version", action="version", version=f"nao {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS.modules:  # nao's own, in help order (a module may define several subcommands)
        importlib.import_module(name).add_parser(sub)
    for _, add in COMMANDS.items():  # plug-ins: ``COMMANDS.register(name)(add_parser)`` or the nao.commands group
        add(sub)
    for sp in sub.choices.values():
        # Accept -q/-v after the subcommand too; SUPPRESS keeps the top-level value unless given.
        sp.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress bars")
        sp.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging")
    return parser


#: Flags of ``nao`` itself, allowed before the subcommand (``nao -q search ...``).
_GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def expand_short_forms(argv: Sequence[str]) -> list[str]:
    """``argv`` with the short forms spelled out, wherever the global flags stand.

    ``nao`` alone (or with only ``-q``/``-v``) is ``nao search``; ``nao search --benchmark F`` names its
    task (:func:`nao.cli.search.normalise_argv`), also as ``nao -q search --benchmark F``.

    >>> expand_short_forms(["-q", "search", "--benchmark", "b.csv.gz"])
    ['-q', 'search', 'tabular', '--benchmark', 'b.csv.gz']
    >>> expand_short_forms(["-v"])
    ['-v', 'search', 'cnn']
    """
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i] in _GLOBAL_FLAGS:
        i += 1
    head, rest = argv[:i], argv[i:]
    if not rest:
        rest = ["search"]  # `nao` alone runs the embedded default search
    from nao.cli.search import normalise_argv

    return head + normalise_argv(rest)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nao`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        argv = expand_short_forms(argv)
    except NaoError as e:
        print(f"nao search: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO,
        format="%(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except NaoError as e:
        print(f"nao {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nao {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
