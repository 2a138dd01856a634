"""Time-based media: oral histories, music and performance, with their time-coded words.

>>> from echoes_lab import media
>>> table = media.read_timed("interview.eaf")           # doctest: +SKIP
>>> table[["start", "end", "speaker", "text"]]          # doctest: +SKIP
>>> media.probe("interview.wav")["duration"]             # doctest: +SKIP
>>> words = media.transcribe("interview.wav", annotate=True)   # doctest: +SKIP
>>> media.write_manifest(words, "interview.json", media="https://…/interview.mp3",
...                      duration=1686.0, manifest_id="https://…/interview.json")  # doctest: +SKIP

* :func:`read_timed` reads WebVTT, SubRip, ELAN EAF, Praat TextGrid, OHMS XML and IIIF
  Presentation 3 AV manifests into one table (``start``, ``end`` in seconds, ``tier``,
  ``speaker``, ``language``, ``text``, ``source``); :func:`write_vtt`, :func:`write_eaf` and
  :func:`write_manifest` write it back (:mod:`echoes_lab.media.timed`).
* :func:`probe` says what a recording is (:mod:`echoes_lab.media.probing`).
* :func:`transcribe` is the speech-to-text software actor of the commons
  (:mod:`echoes_lab.media.speech`); :func:`target` is a time range of a recording as an
  annotation target (``t=start,end``).
* :func:`player` plays a recording with its transcript in sync and annotates time ranges
  (:mod:`echoes_lab.media.widget`).
"""

from __future__ import annotations

import importlib

_LAZY = {
    "COLUMNS": "timed", "read_timed": "timed", "write_vtt": "timed", "write_eaf": "timed",
    "write_manifest": "timed", "parse_fragment": "timed", "fragment": "timed",
    "search": "timed", "probe": "probing", "transcribe": "speech", "publish": "speech",
    "target": "speech", "player": "widget",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        msg = f"module 'echoes_lab.media' has no attribute '{name}'"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"echoes_lab.media.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
