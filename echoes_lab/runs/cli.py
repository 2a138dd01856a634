"""``echoes-lab run``: one run, or a batch with ``--grid``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml

from echoes_lab.errors import ParameterError
from echoes_lab.runs.batches import run_grid
from echoes_lab.runs.execution import KERNEL, run
from echoes_lab.runs.parameters import check_parameters


def add_arguments(parser) -> None:
    parser.add_argument("notebook", help="the notebook to run")
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a parameter (repeatable)",
    )
    parser.add_argument(
        "--parameters",
        metavar="FILE",
        help="parameters from a YAML/JSON mapping ('-': standard input)",
    )
    parser.add_argument("-o", "--output", help="output folder (default: runs/<name>-<time>)")
    parser.add_argument("--grid", metavar="FILE", help="YAML grid of parameters: one run per set")
    parser.add_argument(
        "--workers", type=int, default=2, help="runs at a time in a batch (default 2)"
    )
    parser.add_argument("--dask", metavar="ADDRESS", help="run the batch on this Dask scheduler")
    parser.add_argument("--kernel", default=KERNEL, help=f"Jupyter kernel (default {KERNEL})")
    parser.add_argument("--timeout", type=float, help="seconds allowed per cell")


def cli(args) -> int:
    """Handler of ``echoes-lab run``."""
    values = {}
    if args.parameters:
        try:
            text = (
                sys.stdin.read()
                if args.parameters == "-"
                else Path(args.parameters).read_text(encoding="utf-8")
            )
            values = yaml.safe_load(text) or {}
        except (OSError, yaml.YAMLError) as exc:
            msg = f"{args.parameters}: cannot read parameters ({exc})"
            raise ParameterError(msg) from None
        if not isinstance(values, dict):
            msg = f"{args.parameters}: expected a mapping of parameter names to values"
            raise ParameterError(msg)
    if args.grid:
        if args.parameter or args.parameters:
            msg = "give either --grid or parameters (-p/--parameters), not both"
            raise ParameterError(msg)
        stem = Path(args.notebook).stem
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        out = args.output or Path("runs") / f"{stem}-batch-{stamp}"
        table = run_grid(
            args.notebook,
            args.grid,
            out,
            workers=args.workers,
            dask=args.dask,
            kernel=args.kernel,
            timeout=args.timeout,
        )
        failed = int((table["status"] != "completed").sum())
        index = Path(out) / "index.html"
        print(f"{len(table) - failed} of {len(table)} runs completed; index: {index}")  # noqa: T201
        return 1 if failed else 0
    text = dict(args.parameter)
    params = {
        **check_parameters(args.notebook, values),
        **check_parameters(args.notebook, text, from_text=True),
    }
    result = run(args.notebook, params, args.output, kernel=args.kernel, timeout=args.timeout)
    print(f"completed: {result.notebook}\n  html: {result.html}\n  crate: {result.crate}")  # noqa: T201
    return 0
