"""Reproducible notebook runs: Papermill on the ECHOES kernel, with an RO-Crate of each run.

>>> from echoes_lab.runs import run
>>> result = run("climate-report.ipynb", {"gallery": "G3"}, "out/g3")   # doctest: +SKIP

What a run does, in order:

1. reads the notebook's cell tagged ``parameters`` with Papermill's own inference
   (``papermill.inspect_notebook``) and checks the given parameters against it *before*
   anything runs: an unknown name or a value of the wrong type raises
   :class:`~echoes_lab.errors.ParameterError` listing every accepted parameter and its type
   (the type is the annotation, else the type of the default value);
2. copies the notebook into ``output_dir/source/`` and executes it with Papermill on the
   ``echoes`` kernel (working directory: the notebook's own folder, as in the lab);
3. writes the executed notebook, its HTML rendering (nbconvert) and ``ro-crate-metadata.json``
   (:mod:`echoes_lab.runs.provenance`) with the parameters, every dataset opened through
   :func:`echoes_lab.open_dataset` and its sha256, the environment, times and status.

A failing run keeps the partial executed notebook (Papermill marks the failing cell), its crate
says ``failed`` and :func:`run` raises :class:`~echoes_lab.errors.RunError` after writing all
that. :func:`run_grid` runs one notebook over a parameter grid with bounded parallelism
(processes, or a Dask cluster) and writes ``index.csv`` and ``index.html``.

The kernel reports the datasets it opened through a file named in ``ECHOES_RUN_RECORD``
(see :data:`echoes_lab.datasets.RUN_RECORD_ENV`); :func:`run` sets it in this process's
environment for the kernel to inherit, so one process runs one notebook at a time (batches use
separate processes).
"""

from __future__ import annotations

import ast
import contextlib
import html as html_lib
import itertools
import json
import os
import shutil
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from echoes_lab.datasets import RUN_RECORD_ENV
from echoes_lab.errors import ParameterError, RunError

KERNEL = "echoes"
_TYPES = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "dict": dict}


@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell."""

    name: str
    type: str  # int, float, str, bool, list, dict or "any"
    default: str  # as written in the cell
    help: str = ""

    def describe(self) -> str:
        return f"{self.name} ({self.type}, default {self.default})"


@dataclass
class RunResult:
    """What one run produced; paths are inside ``output_dir``."""

    status: str  # "completed" | "failed"
    output_dir: Path
    notebook: Path
    html: Path | None
    crate: Path
    parameters: dict
    start: str
    end: str
    datasets: list[dict] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> dict:
        d = asdict(self)
        return {k: str(v) if isinstance(v, Path) else v for k, v in d.items()}


def notebook_parameters(notebook) -> dict[str, Parameter]:
    """The parameters a notebook accepts, read from its cell tagged ``parameters``.

    ``notebook`` is a path, or a notebook already read (a dict or ``NotebookNode``, e.g. what
    the reports service got from the owner's server): then no file is opened here at all.
    """
    import papermill
    from papermill.inspection import _infer_parameters

    if isinstance(notebook, dict):
        import nbformat

        try:
            # through JSON: multi-line sources become strings, as when read from a file
            nb = nbformat.reads(json.dumps(notebook), as_version=4)
            for cell in nb.cells:  # as papermill's own loader does
                cell.metadata.setdefault("tags", [])
            found = {p.name: p._asdict() for p in _infer_parameters(nb)}
        except Exception:  # never quote the notebook's text back: it may not be the caller's
            msg = "cannot read the notebook's cells (not a Jupyter notebook)"
            raise ParameterError(msg) from None
    else:
        path = Path(notebook)
        if not path.is_file():
            msg = f"{path}: no such notebook"
            raise ParameterError(msg)
        try:
            found = papermill.inspect_notebook(str(path))
        except Exception:  # papermill raises plain exceptions for unreadable notebooks
            msg = f"{path}: cannot read the notebook (not a Jupyter notebook)"
            raise ParameterError(msg) from None
    params = {}
    for name, p in found.items():
        kind = p.get("inferred_type_name") or "None"
        if kind in ("None", "", None):
            try:
                kind = type(ast.literal_eval(p["default"])).__name__
            except (ValueError, SyntaxError):
                kind = "any"
        params[name] = Parameter(
            name, kind if kind in _TYPES else "any", p["default"], p.get("help", "")
        )
    return params


def _accepted(label: str, params: dict[str, Parameter]) -> str:
    # names and types only: an error reply never quotes the notebook's text (defaults)
    if not params:
        return f"{label} has no cell tagged 'parameters', so it accepts none"
    return "accepted parameters: " + "; ".join(f"{p.name} ({p.type})" for p in params.values())


def _from_text(text: str, kind: str):
    """A command-line string as a value of ``kind`` (YAML syntax for lists and dicts)."""
    if kind == "str":
        return text
    if kind == "bool":
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError(text)
    if kind in ("int", "float"):
        return _TYPES[kind](text)
    value = yaml.safe_load(text)
    if kind in ("list", "dict") and not isinstance(value, _TYPES[kind]):
        raise ValueError(text)
    return value


def check_parameters(
    notebook, values: dict | None, *, from_text: bool = False, label: str | None = None
) -> dict:
    """Check ``values`` against the notebook's parameters; return them, converted.

    With ``from_text`` the values are strings from the command line, converted to each
    parameter's type. An int is accepted for a float; a bool is not accepted for a number.

    Raises
    ------
    ParameterError
        An unknown name, or a value that is not of the parameter's type; the message lists
        every accepted parameter with its type and default.
    """
    params = notebook_parameters(notebook)
    label = label or (Path(notebook).name if not isinstance(notebook, dict) else "the notebook")
    checked = {}
    for name, value in (values or {}).items():
        if name not in params:
            msg = f"{label}: unknown parameter '{name}'; {_accepted(label, params)}"
            raise ParameterError(msg)
        kind = params[name].type
        try:
            if from_text and isinstance(value, str):
                value = _from_text(value, kind)
            elif kind == "float" and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            ok = kind == "any" or (
                isinstance(value, _TYPES[kind])
                and not (kind in ("int", "float") and isinstance(value, bool))
            )
            if not ok:
                raise ValueError(value)
        except ValueError:
            msg = (
                f"{label}: parameter '{name}' must be {kind}, not {type(value).__name__}; "
                f"{_accepted(label, params)}"
            )
            raise ParameterError(msg) from None
        checked[name] = value
    return checked


def _now() -> datetime:
    return datetime.now(timezone.utc)


_local = threading.local()


def _html(executed: Path) -> Path:
    import nbformat

    # one exporter per thread: loading its templates costs more than rendering a small notebook
    exporter = getattr(_local, "exporter", None)
    if exporter is None:
        from nbconvert import HTMLExporter

        exporter = _local.exporter = HTMLExporter()
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    out = executed.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


@dataclass
class Job:
    """One notebook run of a batch: what :func:`run_many` executes."""

    notebook: Path
    parameters: dict
    output_dir: Path
    kernel: str = KERNEL
    timeout: float | None = None
    owner: str | None = None
    key: object = None  # the caller's name for this job (e.g. the reports service's run id)


class _Kernel:
    """A kernel started ahead of its run, with the file its datasets are recorded in.

    Every run gets a kernel of its own (a fresh interpreter, nothing left from an earlier run);
    starting it while the previous run executes hides most of the start-up time.
    """

    def __init__(self, name: str, cwd: Path):
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        fd, record = tempfile.mkstemp(prefix="echoes-run-", suffix=".json")
        os.close(fd)
        self.record, self.key = Path(record), (name, str(cwd))
        self.km = AsyncKernelManager(kernel_name=name)
        # the kernel reports the datasets it opens through ECHOES_RUN_RECORD (its own file)
        try:
            run_sync(self.km.start_kernel)(cwd=str(cwd), env={**os.environ, RUN_RECORD_ENV: record})
        except BaseException:
            self.record.unlink(missing_ok=True)
            raise

    def datasets(self) -> list[dict]:
        try:
            return json.loads(self.record.read_text() or "[]")
        except (OSError, ValueError):
            return []

    def close(self) -> None:
        from jupyter_core.utils import run_sync

        try:
            if self.km.has_kernel:
                run_sync(self.km.shutdown_kernel)(now=True)
        finally:
            self.record.unlink(missing_ok=True)


def _execute(job: Job, kernel: _Kernel | None) -> RunResult:
    """Run one job on ``kernel`` (started for it) or on a kernel Papermill starts."""
    import papermill

    from echoes_lab.runs.provenance import write_crate

    source = Path(job.notebook).resolve()
    checked = check_parameters(source, job.parameters)
    out = Path(job.output_dir).resolve()
    (out / "source").mkdir(parents=True, exist_ok=True)
    copy = out / "source" / source.name
    shutil.copy2(source, copy)
    executed = out / source.name
    own = kernel is None
    start, error = _now(), None
    try:
        if own:
            kernel = _Kernel(job.kernel, source.parent)
        papermill.execute_notebook(
            str(copy),
            str(executed),
            parameters=checked,
            kernel_name=job.kernel,
            km=kernel.km,
            progress_bar=False,
            execution_timeout=job.timeout,
        )
    except papermill.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count} raised {exc.ename}: {exc.evalue}"
    except Exception as exc:  # a dead kernel, a timeout, a missing kernel: all a failed run
        error = f"{type(exc).__name__}: {exc}"
    end = _now()
    datasets = kernel.datasets() if kernel is not None else []
    if own and kernel is not None:
        kernel.close()
    status = "failed" if error else "completed"
    html = _html(executed) if executed.exists() else None
    crate = write_crate(
        out,
        source=copy,
        executed=executed,
        html=html,
        parameters=checked,
        datasets=datasets,
        start=start,
        end=end,
        status=status,
        error=error,
        kernel=job.kernel,
        owner=job.owner,
    )
    return RunResult(
        status,
        out,
        executed,
        html,
        crate,
        checked,
        start.isoformat(),
        end.isoformat(),
        datasets,
        error,
    )


def _failed_row(job: Job, exc: Exception) -> RunResult:
    return RunResult(
        "failed",
        Path(job.output_dir),
        None,
        None,
        None,
        dict(job.parameters),
        None,
        None,
        [],
        str(exc),
    )


def run_many(jobs: list[Job], workers: int = 2, on_event=None) -> list[RunResult]:
    """Run ``jobs`` with ``workers`` at a time, each in a fresh kernel started ahead of time.

    Each worker thread keeps one spare kernel booting while its current run executes, so a
    run rarely waits for a kernel; a kernel serves exactly one run and is then stopped.
    ``on_event(kind, job, result)`` is called with ``"start"`` (result None) and ``"end"``.
    Results come back in the order of ``jobs``; a run that could not even start is a failed
    result, not a lost batch.
    """
    results: list[RunResult | None] = [None] * len(jobs)
    todo = list(range(len(jobs)))[::-1]
    lock = threading.Lock()

    def take() -> int | None:
        with lock:
            return todo.pop() if todo else None

    def worker() -> None:
        spare: _Kernel | None = None
        while (i := take()) is not None:
            job = jobs[i]
            cwd = Path(job.notebook).resolve().parent
            kernel = None
            try:
                if spare is not None and spare.key == (job.kernel, str(cwd)):
                    kernel, spare = spare, None
                else:
                    if spare is not None:
                        spare.close()
                        spare = None
                    with contextlib.suppress(Exception):  # else _execute fails it, with a crate
                        kernel = _Kernel(job.kernel, cwd)
                with lock:
                    more = bool(todo)
                if more and kernel is not None:
                    with contextlib.suppress(Exception):
                        spare = _Kernel(job.kernel, cwd)  # boots while this run executes
                if on_event:
                    on_event("start", job, None)
                results[i] = _execute(job, kernel)
            except Exception as exc:
                results[i] = _failed_row(job, exc)
            finally:
                if kernel is not None:
                    kernel.close()
            if on_event:
                on_event("end", job, results[i])
        if spare is not None:
            spare.close()

    threads = [
        threading.Thread(target=worker, name=f"echoes-run-{n}", daemon=True)
        for n in range(max(1, min(workers, len(jobs))))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def run(
    notebook: str | Path,
    parameters: dict | None = None,
    output_dir: str | Path | None = None,
    *,
    kernel: str = KERNEL,
    timeout: float | None = None,
    owner: str | None = None,
    raise_on_failure: bool = True,
) -> RunResult:
    """Execute ``notebook`` with ``parameters`` into ``output_dir`` and record its provenance.

    Parameters
    ----------
    notebook
        The ``.ipynb`` file to run; it runs in its own folder.
    parameters
        ``{name: value}`` for the cell tagged ``parameters``; checked first.
    output_dir
        Folder for the outputs (created; default ``runs/<name>-<UTC time>``).
    kernel
        The Jupyter kernel (default the ECHOES kernel).
    timeout
        Seconds allowed per cell (default: no limit).
    owner
        Name recorded as the run's agent in the crate.
    raise_on_failure
        Raise :class:`RunError` when the notebook fails (after writing every output).

    Returns
    -------
    RunResult
    """
    source = Path(notebook).resolve()
    checked = check_parameters(source, parameters)
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    out = Path(output_dir or Path("runs") / f"{source.stem}-{stamp}").resolve()
    result = _execute(Job(source, checked, out, kernel, timeout, owner), None)
    if result.error and raise_on_failure:
        msg = (
            f"{source.name} failed: {result.error}; the partial notebook is kept in "
            f"{result.notebook}"
        )
        raise RunError(msg)
    return result


def serve_jobs(spec: str, workers: int = 2) -> None:
    """Run a batch sent by the reports service, inside the owner's own server; report on stdout.

    ``spec`` is JSON: a list of ``{key, notebook, parameters, output_dir, timeout, owner}``
    with paths relative to the home folder. This runs in a kernel of the owner's named server
    (so as the owner, with their files, their limits); each run still gets a fresh kernel.
    Prints one line per event, ``ECHOES-RUN {json}``, which the service reads.
    """
    import queue

    home = Path.home()
    events: queue.Queue = queue.Queue()
    jobs = [
        Job(
            home / j["notebook"],
            j.get("parameters") or {},
            home / j["output_dir"],
            j.get("kernel") or KERNEL,
            j.get("timeout"),
            j.get("owner"),
            j["key"],
        )
        for j in json.loads(spec)
    ]

    def on_event(kind, job, result):
        event = {"event": kind, "key": job.key}
        if result is not None:
            outputs = {
                k: getattr(result, k).name
                for k in ("notebook", "html", "crate")
                if getattr(result, k) is not None and getattr(result, k).is_file()
            }
            event.update(status=result.status, error=result.error, outputs=outputs)
        events.put(event)

    # events are printed from this thread: output from other threads may not reach the client
    thread = threading.Thread(target=run_many, args=(jobs, workers, on_event), daemon=True)
    thread.start()
    done = 0
    while done < len(jobs):
        event = events.get()
        done += event["event"] == "end"
        print("ECHOES-RUN " + json.dumps(event), flush=True)  # noqa: T201 -- read by the service
    thread.join()


# -- batches ----------------------------------------------------------------------------------


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

    Every parameter set is checked before any run starts. Runs go to
    ``output_dir/run-001`` … with at most ``workers`` at a time in separate processes, or on
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


# -- command line (``echoes-lab run``) --------------------------------------------------------


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
        out = args.output or Path("runs") / f"{stem}-batch-{_now().strftime('%Y%m%dT%H%M%SZ')}"
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
