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
(worker threads, each run on a kernel of its own, or a Dask cluster) and writes ``index.csv``
and ``index.html``.

The kernel reports the datasets it opened through a file named in ``ECHOES_RUN_RECORD``
(see :data:`echoes_lab.datasets.RUN_RECORD_ENV`), set in that kernel's own environment when it
starts, so runs side by side in one process keep their records apart.

The modules: :mod:`~echoes_lab.runs.parameters` (reading and checking parameters),
:mod:`~echoes_lab.runs.execution` (one run, a batch on threads, the reports service's batch),
:mod:`~echoes_lab.runs.batches` (grids and their index), :mod:`~echoes_lab.runs.provenance`
(RO-Crates), :mod:`~echoes_lab.runs.cli` (``echoes-lab run``).
"""

from echoes_lab.runs.batches import read_grid, run_grid, write_index
from echoes_lab.runs.cli import add_arguments, cli
from echoes_lab.runs.execution import KERNEL, Job, RunResult, run, run_many, serve_jobs
from echoes_lab.runs.parameters import Parameter, check_parameters, notebook_parameters

__all__ = ["KERNEL", "Job", "Parameter", "RunResult", "add_arguments", "check_parameters", "cli",
           "notebook_parameters", "read_grid", "run", "run_grid", "run_many", "serve_jobs",
           "write_index"]

