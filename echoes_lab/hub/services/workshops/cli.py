"""``echoes-lab workshop …``: the sub-commands' arguments and their printed results."""

from __future__ import annotations

import argparse
import json


def add_actions(ws_sub) -> None:
    """The actions of ``echoes-lab workshop`` (the command itself is in ``echoes_lab.cli``)."""
    create = ws_sub.add_parser("create", help="seats, credentials, trainers' role and materials")
    create.add_argument("name")
    create.add_argument("--seats", type=int, required=True)
    create.add_argument("--trainer", action="append", required=True, dest="trainers")
    create.add_argument("--materials", required=True,
                        help="a folder or a git repository (URL or clone)")
    create.add_argument("--ends", required=True,
                        help="end, e.g. 2026-12-01T17:00 (this machine's time)")
    create.add_argument("--credentials", choices=["cards", "shared"], default="cards",
                        help="cards: a password per seat (default); shared: the hub's user "
                             "password")
    create.add_argument("--mem-limit", help="per-seat memory limit, e.g. 2G")
    create.add_argument("--warm", action="store_true",
                        help="start every seat's server now, so the room finds its labs running "
                             "(the idle culler stops unused ones later)")
    create.add_argument("--starts",
                        help="when the room arrives, e.g. 2026-12-01T09:00: the workshops "
                             "service starts every seat's server 10 minutes before")
    create.add_argument("--concurrency", type=int, default=4,
                        help="servers started at a time by --warm (default 4)")

    warm = ws_sub.add_parser("warm", help="start every seat's server before the trainees arrive")
    warm.add_argument("name")
    warm.add_argument("--concurrency", type=int, default=4, help="servers started at a time")

    status = ws_sub.add_parser("status", help="who signed in, whose server runs, last activity")
    status.add_argument("name")
    status.add_argument("--json", action="store_true")

    update = ws_sub.add_parser("update-materials", help="merge new materials into every seat")
    update.add_argument("name")
    update.add_argument("--materials",
                        help="a new folder or repository (default: the one given at create)")

    announce = ws_sub.add_parser("announce",
                                 help="a message on the hub pages of seats and trainers")
    announce.add_argument("name")
    announce.add_argument("message", help='the text; "" removes the announcement')

    collect = ws_sub.add_parser("collect",
                                help="copy each seat's submissions/ into the trainer's home")
    collect.add_argument("name")
    collect.add_argument("--files", nargs="+",
                         help="patterns relative to each home (default: submissions)")
    collect.add_argument("--trainer", help="whose home receives them (default: the first trainer)")

    close = ws_sub.add_parser("close", help="stop servers, archive every home, disable the seats")
    close.add_argument("name")
    close.add_argument("--trainer",
                       help="whose home receives the archives (default: the first trainer)")


def _settings(args) -> str:
    from echoes_lab.hub.launch import DEFAULT_SETTINGS

    return args.settings or str(DEFAULT_SETTINGS)


def _pull_report(pull: dict) -> int:
    failed = {seat: msg for seat, msg in pull.items() if msg != "ok"}
    print(f"materials in {len(pull) - len(failed)} of {len(pull)} seats")
    for msg in failed.values():
        print(f"  {msg}")
    return 1 if failed else 0


def _warnings(out: dict) -> None:
    for text in out.get("warnings", []):
        print(f"warning: {text}")


def _warm_report(warm: dict) -> int:
    failed = {seat: msg for seat, msg in warm.items() if msg != "ok"}
    print(f"servers running for {len(warm) - len(failed)} of {len(warm)} seats")
    for seat, msg in failed.items():
        print(f"  {seat}: {msg}")
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from echoes_lab.hub.services.workshops import manage

    settings = _settings(args)
    if args.action == "create":
        out = manage.create(
            settings,
            args.name,
            args.seats,
            args.trainers,
            args.materials,
            args.ends,
            credentials=args.credentials,
            mem_limit=args.mem_limit,
            warm=args.warm,
            concurrency=args.concurrency,
            starts=args.starts,
        )
        print(
            f"workshop {args.name}: {len(out['seats'])} seats "
            f"({out['seats'][0]} … {out['seats'][-1]}), "
            f"trainers {', '.join(args.trainers)}"
        )
        print(f"cards to print: {out['cards'][0]} (and {out['cards'][1].name})")
        print("trainers: sign in again to receive the workshop role")
        shared = sum(v == "ok" for v in out["shares"].values())
        print(f"seats' labs shared with the trainers: {shared} of {len(out['shares'])}")
        out["warnings"] += [
            f"{seat}: not shared with the trainers: {msg}"
            for seat, msg in out["shares"].items()
            if msg != "ok"
        ]
        _warnings(out)
        code = _pull_report(out["pull"])
        if "warm" in out:
            code = max(code, _warm_report(out["warm"]))
        return 1 if out["warnings"] else code
    if args.action == "warm":
        return _warm_report(manage.warm(settings, args.name, concurrency=args.concurrency))
    if args.action == "update-materials":
        out = manage.update_materials(settings, args.name, args.materials)
        print(f"materials at commit {out['materials'][:10]}")
        _warnings(out)
        return max(_pull_report(out["pull"]), 1 if out["warnings"] else 0)
    if args.action == "status":
        rows = manage.status(settings, args.name)
        if args.json:
            print(json.dumps(rows, indent=1))
            return 0
        print(f"{'seat':24} {'signed in':10} {'server':9} last activity")
        for r in rows:
            print(
                f"{r['seat']:24} {'yes' if r['signed_in'] else 'no':10} {r['server']:9} "
                f"{r['last_activity']}"
            )
        running = sum(r["server"] == "running" for r in rows)
        print(
            f"{sum(r['signed_in'] for r in rows)} of {len(rows)} signed in, "
            f"{running} servers running"
            + (" (closed)" if rows and rows[0]["closed"] else "")
        )
        return 0
    if args.action == "announce":
        w = manage.announce(settings, args.name, args.message)
        print(
            f"announcement for {w.name}: {w.announcement!r}"
            if w.announcement
            else f"announcement for {w.name} removed"
        )
        return 0
    if args.action == "collect":
        rows: list = []
        manifest = manage.collect(settings, args.name, args.files, args.trainer, rows=rows)
        print(f"{len(rows)} files collected; manifest {manifest}")
        return 0
    if args.action == "close":
        out = manage.close(settings, args.name, args.trainer)
        folder = next(iter(out["archives"].values())).parent if out["archives"] else "(no homes)"
        print(
            f"workshop {args.name} closed: servers stopped, {out['processes_killed']} other "
            f"processes ended, {out['schedules_disabled']} schedules paused, "
            f"{out['tokens_revoked']} tokens revoked, {len(out['archives'])} homes archived "
            f"in {folder}; nothing deleted"
        )
        return 0
    return 2
