"""Executing runs: one notebook on a fresh kernel (:func:`run`), a batch on worker threads
that each keep a kernel booting ahead of their next run (:func:`run_many`), and the batch the
reports service sends into the owner's server (:func:`serve_jobs`).

The kernel reports the datasets it opened through a file named in ``ECHOES_RUN_RECORD``
(:data:`echoes_lab.datasets.RUN_RECORD_ENV`), set in each kernel's own environment when it is
started, so runs in threads side by side keep their records apart."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from echoes_lab.datasets import RUN_RECORD_ENV
from echoes_lab.errors import RunError
from echoes_lab.runs.parameters import check_parameters

KERNEL = "echoes"


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

    def __init__(self, name: str, cwd: Path, template=None):
        import uuid

        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        fd, record = tempfile.mkstemp(prefix="echoes-run-", suffix=".json")
        os.close(fd)
        self.record, self.key = Path(record), (name, str(cwd))
        self.km = AsyncKernelManager(kernel_name=name)
        if template is not None:  # forked from the batch's template (echoes_lab.runs.kernels)
            from echoes_lab.runs.kernels import ForkedProvisioner

            self.km.kernel_id = str(uuid.uuid4())
            self.km.provisioner = ForkedProvisioner(
                kernel_id=self.km.kernel_id, kernel_spec=self.km.kernel_spec, parent=self.km)
            self.km.provisioner.template = template
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
    """Run one job on ``kernel`` (started for it) or on a kernel of its own."""
    return _execute_notebook(job, kernel)()


def _execute_notebook(job: Job, kernel: _Kernel | None):
    """Execute one job's notebook; return the function writing its HTML and RO-Crate and
    returning its :class:`RunResult` (a batch calls it off the next run's path)."""
    import papermill

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

    def finish() -> RunResult:
        from echoes_lab.runs.provenance import write_crate

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

    return finish


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

    Each worker thread keeps one spare kernel starting while its current run executes, so a
    run rarely waits for a kernel; a kernel serves exactly one run and is then stopped. In a
    batch of more than one run, kernels of this interpreter's IPython are forked from one
    template that imported ipykernel, numpy and pandas once (:mod:`echoes_lab.runs.kernels`),
    not started as new interpreters. A run's HTML and RO-Crate are written by a thread of
    their own while the worker goes on to the next run.
    ``on_event(kind, job, result)`` is called with ``"start"`` (result None) and ``"end"``
    (once the run's outputs are written). Results come back in the order of ``jobs``; a run
    that could not even start is a failed result, not a lost batch.
    """
    from concurrent.futures import ThreadPoolExecutor

    results: list[RunResult | None] = [None] * len(jobs)
    todo = list(range(len(jobs)))[::-1]
    lock = threading.Lock()
    template = None
    if len(jobs) > 1:
        from echoes_lab.runs.kernels import Template

        template = Template()  # started with the first kernel
    finishing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="echoes-run-outputs")

    def finish(i: int, job: Job, write) -> None:
        try:
            results[i] = write()
        except Exception as exc:
            results[i] = _failed_row(job, exc)
        if on_event:
            on_event("end", job, results[i])

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
                        kernel = _Kernel(job.kernel, cwd, template)
                with lock:
                    more = bool(todo)
                if more and kernel is not None:
                    with contextlib.suppress(Exception):
                        spare = _Kernel(job.kernel, cwd, template)  # starts while this one runs
                if on_event:
                    on_event("start", job, None)
                write = _execute_notebook(job, kernel)
            except Exception as exc:
                results[i] = _failed_row(job, exc)
                write = None
            finally:
                if kernel is not None:
                    kernel.close()
            if write is not None:
                finishing.submit(finish, i, job, write)
            elif on_event:
                on_event("end", job, results[i])
        if spare is not None:
            spare.close()

    threads = [
        threading.Thread(target=worker, name=f"echoes-run-{n}", daemon=True)
        for n in range(max(1, min(workers, len(jobs))))
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        finishing.shutdown(wait=True)
        if template is not None:
            template.close()
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
