"""The ``echoes-lab`` command line.

Any :class:`~echoes_lab.errors.EchoesError` becomes one line on stderr and a non-zero exit;
a traceback means a bug in ECHOES Lab, not in the user's input.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from echoes_lab import __version__
from echoes_lab.errors import EchoesError


def _hub(args: argparse.Namespace) -> int:
    from echoes_lab.hub.launch import run_hub

    return run_hub(args.settings, args.log)


def _datasets(args: argparse.Namespace) -> int:
    import yaml

    from echoes_lab import datasets

    if args.action == "list":
        table = datasets.catalog(args.data)
        columns = ["format", "licence", "size_mb", "available", "fetch", "source"]
        print(table[columns].to_string() if len(table) else "no datasets catalogued")
    elif args.action == "info":
        entry = {k: v for k, v in datasets.info(args.name, args.data).items() if k != "base"}
        print(yaml.safe_dump(entry, sort_keys=False, allow_unicode=True), end="")
    elif args.action == "verify":
        report = datasets.verify(args.data)
        for name, status in report.items():
            print(f"{name}: {status}")
        return 0 if all(s in ("ok", "not fetched") for s in report.values()) else 1
    elif args.action == "fetch":
        names = [e["name"] for e in datasets.entries(args.data)] if args.all else args.names
        if not names:
            print("echoes-lab datasets fetch: give NAME(s) or --all", file=sys.stderr)
            return 2
        failed = 0
        for name in names:
            try:
                files = datasets.fetch(name, args.data, mirror=args.mirror)
            except EchoesError as exc:
                if not args.all:
                    raise
                failed += 1  # with --all, one unreachable dataset does not stop the others
                print(f"{name}: {exc}", file=sys.stderr)
                continue
            print(f"{name}: ok ({len(files)} files verified, in {Path(files[0]['path']).parent})")
        return 1 if failed else 0
    elif args.action == "add":
        entry = datasets.add(args.path, name=args.name, title=args.title, licence=args.licence,
                             description=args.description, citation=args.citation,
                             catalog_file=args.catalog)
        where = args.catalog or datasets.user_catalog()
        print(f"added '{entry['name']}' ({len(entry['files'])} files) to {where}")
    return 0


SETTINGS_HELP = "profile settings file (default: hub_config/local.toml)"
#: commands of hub features: (command, help, module with ``add_actions(subparsers)`` and
#: ``run(args)``); each takes ``--settings`` and an action
HUB_COMMANDS = (
    ("workshop", "workshops for trainers: seats, materials, collect, close",
     "echoes_lab.hub.services.workshops.cli"),
    ("project", "team projects: a shared folder and a hub group each",
     "echoes_lab.hub.services.projects.cli"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="echoes-lab", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"echoes-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    hub = sub.add_parser("hub", help="start the multi-user hub")
    hub.add_argument("--settings", help=SETTINGS_HELP)
    hub.add_argument("--log", help="append the hub's output to this file (created mode 0600)")
    hub.set_defaults(func=_hub)

    ds = sub.add_parser("datasets", help="the shared datasets catalogue")
    ds.add_argument("--data", help="the shared datasets folder (default: $ECHOES_DATA)")
    ds_sub = ds.add_subparsers(dest="action", metavar="ACTION", required=True)
    ds_sub.add_parser("list", help="every catalogued dataset")
    ds_sub.add_parser("info", help="one dataset's catalogue entry").add_argument("name")
    ds_sub.add_parser("verify", help="check every file's sha256")
    fetch = ds_sub.add_parser("fetch", help="fetch and verify datasets now (mirror, url or seed)")
    fetch.add_argument("names", nargs="*", metavar="NAME")
    fetch.add_argument("--all", action="store_true", help="every catalogued dataset")
    fetch.add_argument("--mirror", help="folder or URL holding the files (default: $ECHOES_MIRROR)")
    add = ds_sub.add_parser("add", help="catalogue a file or folder of your own")
    add.add_argument("path")
    add.add_argument("--name")
    add.add_argument("--title")
    add.add_argument("--description", default="")
    add.add_argument("--licence", default="unknown")
    add.add_argument("--citation", default="")
    add.add_argument("--catalog", help="catalogue file to write (default: ~/.echoes/catalog.yaml)")
    ds.set_defaults(func=_datasets)

    from echoes_lab import runs

    run = sub.add_parser("run", help="run a notebook with parameters, recording its provenance")
    runs.add_arguments(run)
    run.set_defaults(func=runs.cli)

    for command, help_, module in HUB_COMMANDS:
        tool = importlib.import_module(module)
        group = sub.add_parser(command, help=help_)
        group.add_argument("--settings", help=SETTINGS_HELP)
        tool.add_actions(group.add_subparsers(dest="action", metavar="ACTION", required=True))
        group.set_defaults(func=tool.run)
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
    except OSError as exc:
        # a file the command cannot read or write (a home that is not writable, a notebook
        # that went away): the user's environment, not a bug; one line, as for EchoesError
        where = f": {exc.filename}" if exc.filename else ""
        print(f"echoes-lab: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
