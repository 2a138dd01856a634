"""Exports of the commons: a IIIF Presentation 3 AnnotationPage per canvas, an RO-Crate.

* IIIF Presentation API 3.0 §5.2 "Annotation Page" (https://iiif.io/api/presentation/3.0/):
  the page a viewer such as Mirador or the Universal Viewer loads next to a canvas. A
  ``SpecificResource`` with a ``FragmentSelector`` ``xywh=`` becomes the canvas IRI with the
  fragment (the form §5.3 and the IIIF cookbook use); the W3C properties IIIF shares
  (``creator``, ``created``, ``rights``) stay.
* RO-Crate 1.1 (https://w3id.org/ro/crate/1.1), written with the ``rocrate`` library: the
  selection as one JSON-LD file, with each contributor (Person or SoftwareApplication) and the
  licences as contextual entities.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

IIIF_CONTEXT = "http://iiif.io/api/presentation/3/context.json"
IIIF_KEYS = ("id", "type", "motivation", "body", "target", "creator", "created", "modified",
             "rights", "label")


def _iiif_target(target):
    if isinstance(target, list):
        return [_iiif_target(t) for t in target]
    if isinstance(target, dict) and target.get("type") == "SpecificResource":
        source = target.get("source")
        source_id = source.get("id") if isinstance(source, dict) else source
        selector = target.get("selector") or {}
        if isinstance(selector, dict) and selector.get("type") == "FragmentSelector" and \
                str(selector.get("value", "")).startswith("xywh="):
            return f"{source_id}#{selector['value']}"
    return target


def _iiif_agent(agent):
    if isinstance(agent, dict):
        return {k: agent[k] for k in ("id", "type") if k in agent} | (
            {"label": {"none": [agent["name"]]}} if agent.get("name") else {})
    return agent


def iiif_page(page_id: str, annotations: list[dict]) -> dict:
    """A IIIF Presentation 3 AnnotationPage holding ``annotations`` (W3C JSON)."""
    items = []
    for ann in annotations:
        item = {k: ann[k] for k in IIIF_KEYS if k in ann}
        item["type"] = "Annotation"
        item["target"] = _iiif_target(ann["target"])
        if "creator" in item:
            item["creator"] = _iiif_agent(item["creator"])
        items.append(item)
    return {"@context": IIIF_CONTEXT, "id": page_id, "type": "AnnotationPage", "items": items}


def crate_zip(annotations: list[dict], selection: str) -> bytes:
    """An RO-Crate (zip bytes) of ``annotations``, described as the result of ``selection``."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    crate = ROCrate()
    crate.name = "ECHOES Lab commons: a selection of annotations"
    crate.description = f"W3C Web Annotations selected by {selection}"
    crate.root_dataset["isBasedOn"] = selection
    agents, licences = {}, set()
    for ann in annotations:
        for key, kind in (("creator", "Person"), ("generator", "SoftwareApplication")):
            agent = ann.get(key)
            if isinstance(agent, dict) and agent.get("id") and agent["id"] not in agents:
                props = {"@type": kind, "name": agent.get("name") or agent.get("nickname", "")}
                if agent.get("version"):
                    # RO-Crate 1.2+ (which the library writes): software MUST have url, version
                    props["softwareVersion"] = props["version"] = agent["version"]
                    props["url"] = agent.get("homepage") or agent["id"]
                agents[agent["id"]] = crate.add(ContextEntity(crate, agent["id"], properties=props))
        if ann.get("rights"):
            licences.add(ann["rights"])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "annotations.jsonld"
        path.write_text(json.dumps({
            "@context": "http://www.w3.org/ns/anno.jsonld", "type": "AnnotationCollection",
            "id": selection, "total": len(annotations),
            "first": {"type": "AnnotationPage", "items": annotations}}, ensure_ascii=False))
        crate.add_file(path, "annotations.jsonld", properties={
            "name": "The annotations (W3C Web Annotation JSON-LD)",
            "encodingFormat": "application/ld+json",
            "conformsTo": {"@id": "http://www.w3.org/TR/annotation-model/"},
            "author": [{"@id": a} for a in agents],
            "license": [{"@id": lic} for lic in sorted(licences)],
        })
        for lic in sorted(licences):
            crate.add(ContextEntity(crate, lic, properties={"@type": "CreativeWork",
                                                           "name": lic}))
        crate.license = sorted(licences)[0] if len(licences) == 1 else (
            "https://creativecommons.org/licenses/by/4.0/")
        out = Path(tmp) / "crate"
        crate.write(out)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(out.rglob("*")):
                if f.is_file():
                    zf.write(f, f.relative_to(out))
        return buf.getvalue()
