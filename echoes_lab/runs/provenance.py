"""RO-Crate provenance of a notebook run, written with the ``rocrate`` library.

Each run folder is an RO-Crate (https://w3id.org/ro/crate/1.1) conforming to the Process Run
Crate profile (https://w3id.org/ro/wfrun/process/0.5): one ``CreateAction`` (the run) whose
``instrument`` is the source notebook, whose ``object`` lists the parameters
(``PropertyValue``) and every dataset opened through :func:`echoes_lab.open_dataset` (a
``Dataset`` whose files carry their ``sha256``), and whose ``result`` lists the executed
notebook and its HTML rendering; ``startTime``, ``endTime`` and ``actionStatus`` (completed or
failed, with the ``error``) say how it went. The software environment (Python and every
installed package with its version) is a ``SoftwareApplication`` with ``softwareRequirements``.

:func:`read_crate` reads a crate back with ``rocrate``'s own reader and returns the facts a
person checking a run wants: status, parameters, inputs with checksums, outputs.
"""

from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys
from datetime import datetime
from pathlib import Path

from rocrate.model.contextentity import ContextEntity
from rocrate.rocrate import ROCrate

PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
STATUS = {
    "completed": "http://schema.org/CompletedActionStatus",
    "failed": "http://schema.org/FailedActionStatus",
}
IPYNB = "application/x-ipynb+json"
ROCRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"


@functools.lru_cache(maxsize=1)
def _environment() -> dict:
    packages = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[name.lower()] = dist.version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "packages": dict(sorted(packages.items())),
    }


def environment() -> dict[str, str]:
    """This interpreter's Python version and every installed distribution's version.

    The runner and the ECHOES kernel use the same environment (the kernel spec names the
    runner's own interpreter), so this is the kernel's software too. Read once per process:
    a batch of runs in one process shares one environment.
    """
    env = _environment()
    return {**env, "packages": dict(env["packages"])}


def write_crate(
    folder: Path,
    *,
    source: Path,
    executed: Path | None,
    html: Path | None,
    parameters: dict,
    datasets: list[dict],
    start: datetime,
    end: datetime,
    status: str,
    error: str | None = None,
    kernel: str = "echoes",
    owner: str | None = None,
    env: dict | None = None,
) -> Path:
    """Write ``folder/ro-crate-metadata.json`` describing one run; returns its path.

    ``source``, ``executed`` and ``html`` must lie inside ``folder`` (the crate's root);
    ``executed`` and ``html`` are None when the run stopped before writing them (e.g. no
    kernel); ``datasets`` is the record :func:`echoes_lab.datasets.opened` keeps.
    """
    folder = Path(folder)
    env = env or environment()
    # RO-Crate 1.1: the version the Process Run Crate 0.5 profile is written against
    crate = ROCrate(version="1.1")
    _describe_root(crate, source, kernel, parameters, status, end)
    kernel_app = _software(crate, env, kernel)
    notebook = crate.add_file(
        source,
        dest_path=source.relative_to(folder).as_posix(),
        properties={
            "@type": ["File", "SoftwareSourceCode"],
            "name": f"{source.name} (as given)",
            "encodingFormat": IPYNB,
            "programmingLanguage": "Python",
            "description": "The notebook before execution; its cell tagged 'parameters' "
            "lists the parameters.",
        },
    )
    objects = _parameters(crate, parameters) + _datasets(crate, datasets)
    results = _outputs(crate, folder, executed, html, status)
    action = {
        "@type": "CreateAction",
        "name": f"Run of {source.name}",
        "description": f"Papermill run of {source.name}: {status}",
        "startTime": start.isoformat(),
        "endTime": end.isoformat(),
        "actionStatus": {"@id": STATUS[status]},
    }
    if error:
        action["error"] = error
    run = crate.add_action(
        notebook, identifier="#run", object=objects, result=results, properties=action
    )
    run["instrument"] = [notebook, kernel_app]
    if owner:
        run["agent"] = _entity(crate, f"#owner-{owner}", {"@type": "Person", "name": owner})
    crate.root_dataset["mentions"] = [run]
    crate.metadata.write(folder)
    return folder / "ro-crate-metadata.json"


def _entity(crate: ROCrate, ident: str, properties: dict) -> ContextEntity:
    return crate.add(ContextEntity(crate, ident, properties=properties))


def _describe_root(crate: ROCrate, source: Path, kernel: str, parameters: dict, status: str,
                   end: datetime) -> None:
    """The crate's root: what ran, the profile it conforms to, its (unstated) licence."""
    root = crate.root_dataset
    root["name"] = f"Run of {source.name}"
    root["description"] = (
        f"Papermill execution of {source.name} on the '{kernel}' kernel with "
        f"{len(parameters)} parameter(s); status {status}."
    )
    root["datePublished"] = end.isoformat()
    root["conformsTo"] = {"@id": PROCESS_RUN_CRATE}
    _entity(crate, PROCESS_RUN_CRATE, {"@type": ["CreativeWork", "Profile"],
                                       "name": "Process Run Crate", "version": "0.5"})
    # the notebook's licence is its author's choice, which a run cannot know
    root["license"] = _entity(crate, "#licence-unspecified", {
        "@type": "CreativeWork",
        "name": "No licence stated",
        "description": "The run's owner has not chosen a licence; ask them before reuse.",
    })


def _software(crate: ROCrate, env: dict, kernel: str) -> ContextEntity:
    """The kernel as a SoftwareApplication requiring Python and every installed package."""
    python = _entity(crate, "#python", {
        "@type": "SoftwareApplication",
        "name": env["implementation"],
        "version": env["python"],
        "url": "https://www.python.org/",
    })
    requirements = [python] + [
        _entity(crate, f"#pkg-{name}", {
            "@type": "SoftwareApplication",
            "name": name,
            "version": version,
            "url": f"https://pypi.org/project/{name}/{version}/",
        })
        for name, version in env["packages"].items()
    ]
    return _entity(crate, "#kernel", {
        "@type": "SoftwareApplication",
        "name": f"Jupyter kernel '{kernel}' (ipykernel)",
        "version": env["packages"].get("ipykernel", "unknown"),
        "url": "https://pypi.org/project/ipykernel/",
        "description": f"{env['executable']} -P -m echoes_lab._kernel",
        "softwareRequirements": requirements,
    })


def _parameters(crate: ROCrate, parameters: dict) -> list[ContextEntity]:
    """Each parameter as a PropertyValue (a value JSON-LD cannot hold as is: its repr)."""
    return [
        _entity(crate, f"#param-{key}", {
            "@type": "PropertyValue",
            "name": key,
            "value": value if isinstance(value, (str, int, float, bool)) else repr(value),
        })
        for key, value in parameters.items()
    ]


def _datasets(crate: ROCrate, datasets: list[dict]) -> list[ContextEntity]:
    """Each dataset the run opened, with its files' sha256, read in place (not copied)."""
    found = []
    for d in datasets:
        parts = []
        for f in d["files"]:
            path = Path(f["path"])
            props = {
                "@type": "File",
                "name": path.name,
                "sha256": f["sha256"],
                "description": "Read in place from the shared datasets; not copied into the crate.",
            }
            if path.exists():
                props["contentSize"] = str(path.stat().st_size)
            parts.append(_entity(crate, path.resolve().as_uri(), props))
        dataset = _entity(crate, f"#dataset-{d['name']}", {
            "@type": "Dataset",
            "name": d["name"],
            "identifier": d["name"],
            "description": f"Opened with echoes_lab.open_dataset('{d['name']}') "
            f"from the {d.get('catalogue', '?')} catalogue, every file's sha256 verified.",
            "hasPart": parts,
        })
        # RO-Crate: every data entity is reachable from the root through hasPart
        crate.root_dataset.append_to("hasPart", dataset)
        found.append(dataset)
    return found


def _outputs(crate: ROCrate, folder: Path, executed: Path | None, html: Path | None,
             status: str) -> list:
    """The executed notebook and its HTML rendering, those the run got as far as writing."""
    failed = ", stopped at the failing cell" if status == "failed" else ""
    outputs = [(executed, f"{executed.name} (executed)" if executed else "", IPYNB,
                "The executed notebook" + failed),
               (html, html.name if html else "", "text/html",
                "HTML rendering of the executed notebook (nbconvert)")]
    return [crate.add_file(path, dest_path=path.relative_to(folder).as_posix(),
                           properties={"name": name, "encodingFormat": fmt,
                                       "description": text})
            for path, name, fmt, text in outputs if path is not None and path.exists()]


def _many(value) -> list:
    return [] if value is None else value if isinstance(value, list) else [value]


def read_crate(folder: str | Path) -> dict:
    """Read a run's crate with ``rocrate`` and return its status, parameters, inputs and outputs."""
    crate = ROCrate(str(folder))
    run = crate.get("#run")
    action_status = run["actionStatus"]
    status = {v: k for k, v in STATUS.items()}[getattr(action_status, "id", action_status)]
    params, inputs = {}, []
    for obj in _many(run.get("object")):
        if "PropertyValue" in obj.type:
            params[obj["name"]] = obj["value"]
        elif "Dataset" in obj.type:
            inputs.append(
                {
                    "name": obj["name"],
                    "files": [
                        {"path": p.id, "sha256": p["sha256"]} for p in _many(obj.get("hasPart"))
                    ],
                }
            )
    outputs = [r.id for r in _many(run.get("result"))]
    return {
        "status": status,
        "parameters": params,
        "inputs": inputs,
        "outputs": outputs,
        "start": run["startTime"],
        "end": run["endTime"],
        "error": run.get("error"),
    }


def validate_crate(folder: str | Path, profile: str = "process-run-crate-0.5") -> list[str]:
    """Validate a run's crate with roc-validator (``rocrate_validator``); return the problems.

    Only REQUIRED (MUST) requirements are checked. The validator resolves the RO-Crate JSON-LD
    context from the web; machines without internet get the context the ``rocrate`` library
    ships instead (RO-Crate 1.3, whose terms include those of 1.1 with the same meanings), and
    the two checks that only ask whether the context's URL answers (``ro-crate-1.1_3.1``,
    ``_3.2``) are skipped there.
    """
    import json
    from unittest import mock

    import rocrate
    from rocrate_validator import models, services
    from rocrate_validator.utils import document_loader

    bundled = json.loads((Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld").read_text())
    fetch = document_loader._fetch_json_ld

    def offline(url, *args, **kwargs):
        try:
            return fetch(url, *args, **kwargs)
        except Exception:
            if url.startswith("https://w3id.org/ro/crate/"):
                return {"@context": bundled["@context"]}
            raise

    settings = {
        "rocrate_uri": str(Path(folder).resolve()),
        "profile_identifier": profile,
        "requirement_severity": models.Severity.REQUIRED,
    }
    try:
        fetch(ROCRATE_CONTEXT)
    except Exception:
        settings["skip_checks"] = ["ro-crate-1.1_3.1", "ro-crate-1.1_3.2"]
    with mock.patch.object(document_loader, "_fetch_json_ld", offline):
        result = services.validate(settings)
    return [f"{i.check.identifier if i.check else '?'}: {i.message}" for i in result.get_issues()]
