"""Speech to text as a software actor of the commons.

:func:`transcribe` turns a recording into the time-coded table of :mod:`echoes_lab.media.timed`
with CMU PocketSphinx 5 (https://github.com/cmusphinx/pocketsphinx; Huggins-Daines et al.,
"PocketSphinx: A free, real-time continuous speech recognition system for hand-held devices",
ICASSP 2006), which runs on the CPU with the US English acoustic model, language model and
dictionary its PyPI package ships: nothing is downloaded at run time.

With ``annotate=True`` the transcription is also a contribution to the commons, made the way
every software actor makes one: the run is described by an RO-Crate (the recording with its
sha256, the engine and its model with their sha256, the WebVTT written, start and end), the
actor ``pocketsphinx`` is registered with that crate as its run, and each cue becomes an
annotation with motivation ``transcribing``, a confidence and a W3C Media Fragments target
(``t=start,end``) on the recording, for people to correct and review as they do for OCR.
"""

from __future__ import annotations

import getpass
import hashlib
import io
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from echoes_lab.errors import DataError
from echoes_lab.media.timed import COLUMNS, MEDIA_FRAGS, _table, fragment, write_vtt

RATE = 16_000  # the acoustic model's sampling rate (Hz)
FRAME = 0.01  # PocketSphinx frame shift: 100 frames per second
#: standard deviation of the dither added to the samples (16-bit LSB, about -61 dBFS): digital
#: silence (exact zeros, as synthesisers and edited files have) gives log(0) spectral energies
#: that throw the model off; measured on espeak-ng voices: WER 0.58 -> 0.27 (en-us+klatt),
#: 0.81 -> 0.54 (en-us) (benchmarks/README.md, "media.py")
DITHER = 30.0
#: a pause this long (seconds) ends a cue
PAUSE = 0.3
#: at most this many words per cue (a subtitle line people can read and correct)
MAX_WORDS = 12
MODELS = {"en": "en-us"}


def target(media: str, start: float, end: float, kind: str = "Sound") -> dict:
    """A time range of a recording as a Web Annotation target: a ``SpecificResource`` on
    ``media`` with a ``FragmentSelector`` ``t=START,END`` (W3C Media Fragments URI 1.0
    §4.2.1, Normal Play Time in seconds), as the Web Annotation Data Model §4.2.1 shows."""
    return {"type": "SpecificResource", "source": {"id": media, "type": kind},
            "selector": {"type": "FragmentSelector", "conformsTo": MEDIA_FRAGS,
                         "value": fragment(start, end)}}


def load_pcm(path) -> np.ndarray:
    """The recording as 16 kHz mono signed 16-bit samples (decoded and resampled by PyAV)."""
    import av

    from echoes_lab.media.probing import probe

    info = probe(path)
    if info["audio"] is None:
        msg = f"{path}: has no audio stream to transcribe"
        raise DataError(msg)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    chunks = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)


def _model_dir(language: str) -> Path:
    from pocketsphinx import get_model_path

    if language.split("-")[0].lower() not in MODELS:
        msg = (f"no speech model for language {language!r} is installed: the pocketsphinx "
               f"package ships {', '.join(MODELS)} only")
        raise DataError(msg)
    return Path(get_model_path())


def _cues(words, offset: float, language: str, source: str) -> list[dict]:
    """Group recognised words into cues, breaking at pauses and after MAX_WORDS."""
    rows, current = [], []

    def close():
        if current:
            rows.append({"start": current[0][1], "end": current[-1][2], "tier": "transcript",
                         "speaker": None, "language": language,
                         "text": " ".join(w for w, *_ in current), "source": source,
                         "confidence": float(np.mean([p for *_, p in current]))})
            current.clear()

    for w in words:
        start, end = offset + w.start_frame * FRAME, offset + (w.end_frame + 1) * FRAME
        if w.word in ("<s>", "</s>", "<sil>") or w.word.startswith(("[", "++")):
            if w.word == "<sil>" and end - start >= PAUSE:
                close()
            continue
        current.append((w.word.split("(")[0], start, end, float(w.prob)))
        if len(current) >= MAX_WORDS:
            close()
    close()
    return rows


def transcribe(path, language: str = "en", *, media: str | None = None,
               annotate: bool = False, visibility: str = "private",
               crate: str | Path | None = None) -> pd.DataFrame:
    """Transcribe a recording into the time-coded table, with a ``confidence`` per cue.

    Parameters
    ----------
    path
        An audio or video file FFmpeg reads (WAV, MP3, FLAC, Ogg, MP4…).
    language
        ``"en"``: the model the pocketsphinx package ships (US English).
    media
        The IRI the recording is published at (what the annotations target); default: the
        file's ``file:`` URI.
    annotate
        Also record the run and every cue in the commons (see the module's description).
    visibility
        Of the annotations: ``private``, ``group:<hub group>`` or ``public``.
    crate
        Folder for the run's RO-Crate and WebVTT (default: ``<recording>.transcript/``).

    Returns
    -------
    pandas.DataFrame
        :data:`~echoes_lab.media.timed.COLUMNS` plus ``confidence`` (mean posterior
        probability of the cue's words) and, with ``annotate``, ``annotation`` (the IRI of
        each cue's annotation). ``attrs`` holds ``engine``, ``model``, ``seconds`` (of audio),
        ``elapsed`` and ``rtf`` (real-time factor = elapsed / seconds), and ``crate``.
    """
    from pocketsphinx import Decoder, Segmenter

    path = Path(path)
    model = _model_dir(language)
    begun = datetime.now(UTC)
    t0 = time.perf_counter()
    pcm = load_pcm(path).astype(np.float64)
    # fixed seed: the same recording gives the same transcript
    pcm += np.random.default_rng(0).normal(0.0, DITHER, pcm.size)
    pcm = np.clip(pcm, -32768, 32767).astype(np.int16)
    source = media or path.resolve().as_uri()
    decoder = Decoder(samprate=RATE)
    rows = []
    for seg in Segmenter(sample_rate=RATE).segment(io.BytesIO(pcm.tobytes())):
        decoder.start_utt()
        decoder.process_raw(seg.pcm, full_utt=True)
        decoder.end_utt()
        rows += _cues(decoder.seg(), seg.start_time, language, source)
    elapsed = time.perf_counter() - t0
    seconds = pcm.size / RATE
    table = _table(rows, "transcription") if rows else pd.DataFrame(
        columns=[*COLUMNS, "confidence"])
    version = _version()
    table.attrs.update(engine=f"pocketsphinx {version}", model=f"{MODELS['en']} ({model})",
                       seconds=seconds, elapsed=elapsed,
                       rtf=elapsed / seconds if seconds else None, media=source)
    if annotate:
        folder = Path(crate) if crate else path.with_name(path.name + ".transcript")
        folder.mkdir(parents=True, exist_ok=True)
        vtt = write_vtt(table, folder / (path.stem + ".vtt"))
        meta = _write_crate(folder, recording=path, vtt=vtt, model=model, version=version,
                            start=begun, end=datetime.now(UTC), cues=len(table))
        table.attrs["crate"] = str(meta)
        table["annotation"] = publish(table, media=source, run=str(meta.resolve()),
                                      visibility=visibility, version=version)
    return table


def publish(table: pd.DataFrame, media: str, run: str | None = None,
            visibility: str = "private", version: str | None = None) -> list[str]:
    """Record every cue of ``table`` in the commons as the ``pocketsphinx`` actor
    (motivation ``transcribing``, target ``media`` at ``t=start,end``, its confidence);
    returns the annotations' IRIs."""
    from echoes_lab import commons

    actor = commons.actor("pocketsphinx", version or _version(), run=run,
                          homepage="https://github.com/cmusphinx/pocketsphinx")
    ids = []
    for row in table.itertuples():
        conf = getattr(row, "confidence", None)
        a = actor.annotate(target(media, row.start, row.end), str(row.text),
                           motivation="transcribing", visibility=visibility,
                           confidence=None if conf is None or conf != conf else conf)
        ids.append(a["id"])
    return ids


def _version() -> str:
    import importlib.metadata

    return importlib.metadata.version("pocketsphinx")


def _sha256(paths) -> str:
    digest = hashlib.sha256()
    for p in sorted(paths):
        with open(p, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _write_crate(folder: Path, *, recording: Path, vtt: Path, model: Path, version: str,
                 start: datetime, end: datetime, cues: int) -> Path:
    """An RO-Crate 1.1 of the transcription run: a ``CreateAction`` whose ``instrument`` is the
    engine and its model, ``object`` the recording and ``result`` the WebVTT (Process Run
    Crate 0.5, https://w3id.org/ro/wfrun/process/0.5)."""
    from rocrate.model.contextentity import ContextEntity
    from rocrate.rocrate import ROCrate

    from echoes_lab.runs.provenance import PROCESS_RUN_CRATE

    crate = ROCrate(version="1.1")
    root = crate.root_dataset
    root["name"] = f"Transcription of {recording.name}"
    root["description"] = f"PocketSphinx {version} speech-to-text of {recording.name}: {cues} cues"
    root["datePublished"] = end.isoformat()
    root["conformsTo"] = {"@id": PROCESS_RUN_CRATE}
    model_files = [p for p in (model / "en-us").rglob("*") if p.is_file()] + [
        model / "en-us.lm.bin", model / "cmudict-en-us.dict"]
    engine = crate.add(ContextEntity(crate, "#pocketsphinx", properties={
        "@type": "SoftwareApplication", "name": "PocketSphinx", "version": version,
        "url": f"https://pypi.org/project/pocketsphinx/{version}/"}))
    acoustic = crate.add(ContextEntity(crate, "#model-en-us", properties={
        "@type": "Dataset", "name": "CMU Sphinx US English acoustic and language model",
        "description": "Shipped in the pocketsphinx package; sha256 of its files in path order",
        "sha256": _sha256([p for p in model_files if p.exists()]), "version": version}))
    audio = crate.add(ContextEntity(crate, recording.resolve().as_uri(), properties={
        "@type": "File", "name": recording.name, "sha256": _sha256([recording]),
        "contentSize": str(recording.stat().st_size),
        "description": "The recording, read in place; not copied into the crate."}))
    result = crate.add_file(vtt, dest_path=vtt.name, properties={
        "name": vtt.name, "encodingFormat": "text/vtt", "description": "The transcript"})
    action = crate.add_action(engine, identifier="#run", object=[audio], result=[result],
                              properties={"name": root["name"], "startTime": start.isoformat(),
                                          "endTime": end.isoformat(),
                                          "actionStatus": {
                                              "@id": "http://schema.org/CompletedActionStatus"}})
    action["instrument"] = [engine, acoustic]
    owner = os.environ.get("JUPYTERHUB_USER") or getpass.getuser()
    action["agent"] = crate.add(ContextEntity(crate, f"#owner-{owner}",
                                              properties={"@type": "Person", "name": owner}))
    root["mentions"] = [action]
    crate.metadata.write(folder)
    return folder / "ro-crate-metadata.json"
