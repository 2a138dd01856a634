"""Batches: one notebook over a parameter grid (:func:`run_grid`), on worker threads or a Dask
cluster, with ``index.csv`` and ``index.html``."""

from __future__ import annotations

import html as html_lib
import itertools
import os
from pathlib import Path

import yaml

from echoes_lab.errors import ParameterError
from echoes_lab.runs.execution import KERNEL, Job, run, run_many
from echoes_lab.runs.parameters import check_parameters


def read_grid(grid: str | Path | dict | list) -> list[dict]:
    """Parameter sets from a grid: ``{name: [values]}`` (every combination) or a list of sets.

    A YAML file may hold either form, or ``{"runs": [sets]}``.
    """
    where = str(grid) if isinstance(grid, (str, Path)) else "the grid"
    if isinstance(grid, (str, Path)):
        try:
            grid = yaml.safe_load(Path(grid).read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"{where}: no such grid file"
            raise ParameterError(msg) from None
        except yaml.YAMLError as exc:
            msg = f"{where}: not valid YAML ({exc})"
            raise ParameterError(msg) from None
    if isinstance(grid, dict) and set(grid) == {"runs"}:
        grid = grid["runs"]
    if isinstance(grid, list):
        if not all(isinstance(g, dict) for g in grid):
            msg = f"{where}: a list of runs must hold one mapping of parameters per run"
            raise ParameterError(msg)
        return [dict(g) for g in grid]
    if isinstance(grid, dict):
        names = list(grid)
        values = [v if isinstance(v, list) else [v] for v in grid.values()]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    msg = (f"{where}: expected a mapping of parameter names to lists of values, "
           "or a list of parameter sets")
    raise ParameterError(msg)


def _batch_one(job: tuple) -> dict:
    notebook, params, out, kernel, timeout = job
    try:
        return run(
            notebook, params, out, kernel=kernel, timeout=timeout, raise_on_failure=False
        ).summary()
    except Exception as exc:  # a run that could not even start is a failed row, not a lost batch
        return {
            "status": "failed",
            "output_dir": str(out),
            "parameters": params,
            "error": str(exc),
            "notebook": None,
            "html": None,
            "crate": None,
            "start": None,
            "end": None,
        }


def run_grid(
    notebook: str | Path,
    grid,
    output_dir: str | Path,
    *,
    workers: int = 2,
    dask: str | object | None = None,
    kernel: str = KERNEL,
    timeout: float | None = None,
):
    """Run ``notebook`` once per parameter set of ``grid``; write ``index.csv`` and ``index.html``.

    Every parameter set is checked before any run starts. Runs go to ``output_dir/run-001`` …
    with at most ``workers`` at a time (worker threads, each run on a fresh kernel), or on
    the Dask cluster ``dask`` (a scheduler address or a ``distributed.Client``) when given.
    Returns the index as a pandas DataFrame.
    """
    source = Path(notebook).resolve()
    sets = read_grid(grid)
    checked = []
    for i, params in enumerate(sets, 1):
        try:
            checked.append(check_parameters(source, params))
        except ParameterError as exc:
            msg = f"run {i} of the grid: {exc}"
            raise ParameterError(msg) from None
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(checked))))
    jobs = [
        (str(source), p, str(out / f"run-{i:0{width}d}"), kernel, timeout)
        for i, p in enumerate(checked, 1)
    ]
    if dask is not None:
        from distributed import Client

        client = dask if isinstance(dask, Client) else Client(dask)
        try:
            # pure=False: two identical parameter sets are still two runs
            results = client.gather(client.map(_batch_one, jobs, pure=False))
        finally:
            if client is not dask:
                client.close()
    else:
        # threads, each keeping a kernel booting ahead of its next run (see run_many)
        done = run_many([Job(Path(n), p, Path(o), k, t) for n, p, o, k, t in jobs], workers)
        results = [r.summary() for r in done]
    return write_index(out, results)


def write_index(folder: Path, results: list[dict]):
    """``index.csv`` and ``index.html`` of a batch: a row per run, links relative to ``folder``."""
    import pandas as pd

    rows = []
    for r in results:
        row = {"run": Path(r["output_dir"]).name, "status": r["status"]}
        row.update({f"param:{k}": v for k, v in r["parameters"].items()})
        for key in ("notebook", "html", "crate"):
            row[key] = os.path.relpath(r[key], folder) if r.get(key) else ""
        row.update(start=r.get("start"), end=r.get("end"), error=r.get("error") or "")
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(folder / "index.csv", index=False)

    def cell(key, value):
        if key in ("notebook", "html", "crate") and value:
            return f'<a href="{html_lib.escape(value)}">{html_lib.escape(Path(value).name)}</a>'
        text = html_lib.escape(str(value))
        return f'<span class="{text}">{text}</span>' if key == "status" else text

    head = "".join(f"<th>{html_lib.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(c, v)}</td>" for c, v in row.items()) + "</tr>"
        for row in table.astype(object).where(table.notna(), "").to_dict("records")
    )
    failed = int((table["status"] != "completed").sum()) if len(table) else 0
    (folder / "index.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Batch index</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;border-bottom:1px solid #ddd}"
        ".failed{color:#b00;font-weight:bold}</style>"
        f"<h1>{len(table)} runs, {failed} failed</h1><table><tr>{head}</tr>{body}</table>",
        encoding="utf-8",
    )
    return table
