"""``echoes-lab project …``: the sub-commands' arguments and their printed results."""

from __future__ import annotations

import argparse
import json


def add_actions(pr_sub) -> None:
    """The actions of ``echoes-lab project`` (the command itself is in ``echoes_lab.cli``)."""
    create = pr_sub.add_parser("create", help="a project: hub group, folder, members")
    create.add_argument("name")
    create.add_argument("--members", required=True, action="append",
                        help="comma-separated hub user names (new users are created)")
    create.add_argument("--admins", action="append", default=[],
                        help="members who may add and remove members on the projects page")

    add = pr_sub.add_parser("add", help="add members (effective at their next server start)")
    add.add_argument("name")
    add.add_argument("users", nargs="+")
    add.add_argument("--admin", action="store_true", help="make them project admins too")

    rm = pr_sub.add_parser("remove", help="remove members at once (servers restarted; files stay)")
    rm.add_argument("name")
    rm.add_argument("users", nargs="+")

    ls = pr_sub.add_parser("list", help="every project with its members")
    ls.add_argument("--json", action="store_true")

    ar = pr_sub.add_parser("archive", help="close a project: read-only folder, files stay")
    ar.add_argument("name")


def _describe(p) -> str:
    state = " (archived)" if p.archived else ""
    return (f"project {p.name}{state}: members {', '.join(p.members) or '-'}; "
            f"admins {', '.join(p.admins) or '-'}; folder {p.folder}")


def run(args: argparse.Namespace) -> int:
    from echoes_lab.hub.launch import DEFAULT_SETTINGS
    from echoes_lab.hub.services.projects import manage, storage
    from echoes_lab.hub.settings import load_settings

    settings = args.settings or str(DEFAULT_SETTINGS)
    if args.action == "create":
        p = manage.create(settings, args.name, manage.split_names(args.members),
                          manage.split_names(args.admins))
        print(_describe(p))
        print(f"the folder is {storage.isolation_note(load_settings(settings))}")
        print("members see it as ~/projects/" + p.name + " from their next server start")
    elif args.action == "add":
        print(_describe(manage.add(settings, args.name, manage.split_names(args.users),
                                   admins=args.admin)))
    elif args.action == "remove":
        print(_describe(manage.remove(settings, args.name, manage.split_names(args.users))))
        print("their access ended now (running servers restarted without the project's group, "
              "setuid/setgid files stripped); the files stay")
    elif args.action == "list":
        projects = manage.list_projects(settings)
        if args.json:
            print(json.dumps([{"name": p.name, "members": p.members, "admins": p.admins,
                               "archived": p.archived, "folder": str(p.folder)}
                              for p in projects], indent=1))
        else:
            for p in projects:
                print(_describe(p))
            if not projects:
                print("no projects")
    elif args.action == "archive":
        print(_describe(manage.archive(settings, args.name)))
        print("members lost it now (servers restarted); the folder is read-only, files stay")
    return 0
