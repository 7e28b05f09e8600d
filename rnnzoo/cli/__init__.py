"""The `rnnzoo` command line: thin subcommands over the library (the library never imports it)."""

import argparse
import sys

from rnnzoo import __version__, zoo


def _list(args):
    print(zoo.format_table(args.kind))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="rnnzoo",
        description="The recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.",
    )
    parser.add_argument("--version", action="version", version=f"rnnzoo {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    list_parser = commands.add_parser("list", help="list the zoo's layers, models and tasks")
    list_parser.add_argument("--kind", choices=["layer", "model", "task"], help="only this kind")
    list_parser.set_defaults(run=_list)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
