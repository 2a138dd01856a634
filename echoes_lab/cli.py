"""The ``echoes-lab`` command line.

Any :class:`~echoes_lab.errors.EchoesError` becomes one line on stderr and a non-zero exit;
a traceback means a bug in ECHOES Lab, not in the user's input.
"""

from __future__ import annotations

import argparse
import sys

from echoes_lab import __version__
from echoes_lab.errors import EchoesError


def _hub(args: argparse.Namespace) -> int:
    from echoes_lab.hub.launch import run_hub

    run_hub(args.settings)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="echoes-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"echoes-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    hub = sub.add_parser("hub", help="start the multi-user hub")
    hub.add_argument("--settings", help="profile settings file (default: hub_config/local.toml)")
    hub.set_defaults(func=_hub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except EchoesError as exc:
        print(f"echoes-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
