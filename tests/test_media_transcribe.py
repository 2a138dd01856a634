"""Transcription as a software actor: a known text spoken by espeak-ng, transcribed by
PocketSphinx with the model its package ships, recorded in a local commons with its RO-Crate.

The word error rate threshold is from measurement (benchmarks/README.md, "Media"): with the
voice ``en-us+klatt`` at 160 words per minute and the dither of
:data:`echoes_lab.media.speech.DITHER`, this text gives WER 0.27 (0.58 without the dither);
other espeak-ng voices give 0.27-0.92. The test allows 0.40: losing the dither fails it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import jiwer
import pytest

from echoes_lab import commons, media
from echoes_lab.errors import DataError
from echoes_lab.media.timed import parse_fragment

TEXT = ("My grandmother taught me basket weaving in the village. "
        "We gathered willow by the river in the spring. "
        "My grandfather played the fiddle at every wedding.")
VOICE, SPEED = "en-us+klatt", "160"
MAX_WER = 0.40

pytestmark = [
    pytest.mark.slow,  # a speech engine decodes 9 s of audio (about 20 s on a busy machine)
    pytest.mark.skipif(shutil.which("espeak-ng") is None,
                       reason="espeak-ng (Debian) speaks the test's text; 'make system-deps' "
                              "installs it"),
]


def words(text: str) -> str:
    return jiwer.RemovePunctuation()(text.lower())


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oral-history")
    wav = folder / "interview.wav"
    subprocess.run(["espeak-ng", "-v", VOICE, "-s", SPEED, "-w", str(wav), TEXT], check=True)
    mp = pytest.MonkeyPatch()
    mp.delenv("ECHOES_COMMONS_URL", raising=False)
    mp.setenv("JUPYTERHUB_USER", "ethnographer")
    mp.setenv("ECHOES_COMMONS_DB", str(folder / "commons.sqlite"))
    mp.setattr(commons, "_current", None)  # the next call connects to the file above
    table = media.transcribe(wav, language="en", media="https://archive.example.org/av/1.wav",
                             annotate=True, visibility="public")
    yield wav, table
    mp.undo()


def test_known_text_is_transcribed_under_the_word_error_rate(run):
    _, table = run
    hypothesis = " ".join(table.text)
    wer = jiwer.wer(words(TEXT), words(hypothesis))
    assert wer < MAX_WER, f"WER {wer:.2f}: {hypothesis!r}"
    assert list(table.columns[:7]) == media.COLUMNS
    assert (table.start.diff().dropna() >= 0).all() and (table.end > table.start).all()
    assert table.confidence.between(0, 1).all()
    assert table.attrs["engine"].startswith("pocketsphinx 5")
    assert table.attrs["rtf"] > 0 and table.attrs["seconds"] == pytest.approx(
        media.probe(run[0])["duration"], abs=0.01)


def test_cues_are_transcribing_annotations_with_media_fragment_targets(run):
    wav, table = run
    found = commons.annotations(motivation="transcribing", generator="pocketsphinx")
    assert len(found) == len(table)
    duration = media.probe(wav)["duration"]
    for _, a in found.iterrows():
        ann = a.annotation
        assert a.target == "https://archive.example.org/av/1.wav"
        assert ann["target"]["selector"]["conformsTo"] == "http://www.w3.org/TR/media-frags/"
        # the selector and the IRI form both parse with the W3C grammar, inside the recording
        start, end = parse_fragment(a.selector)
        assert parse_fragment(f"{a.target}#{a.selector}") == (start, end)
        assert 0 <= start < end <= duration + 0.05
        assert 0 <= a.confidence <= 1
        assert ann["generator"]["version"] == table.attrs["engine"].split()[1]
    assert set(found.text) == set(table.text)


def test_the_run_is_an_ro_crate_with_the_recording_model_and_transcript(run):
    wav, table = run
    crate = Path(table.attrs["crate"])
    graph = {e["@id"]: e for e in json.loads(crate.read_text())["@graph"]}
    action = graph["#run"]
    assert action["@type"] == "CreateAction"
    assert {i["@id"] for i in action["instrument"]} == {"#pocketsphinx", "#model-en-us"}
    recording = graph[action["object"][0]["@id"]]
    assert recording["sha256"] == hashlib.sha256(wav.read_bytes()).hexdigest()
    vtt = crate.parent / action["result"][0]["@id"]
    assert media.read_timed(vtt).text.tolist() == table.text.tolist()
    # every annotation names the crate as its run
    one = commons.get(table.annotation.iloc[0])
    assert one["generator"]["homepage"] == str(crate.resolve())


def test_people_correct_and_review_the_software_transcript(run):
    _, table = run
    first = commons.get(table.annotation.iloc[0])
    corrected = commons.update(first, body={"type": "TextualBody", "format": "text/plain",
                                            "value": "My grandmother taught me basket weaving "
                                                     "in the village"})
    assert len(commons.history(corrected["id"])) == 2
    review = commons.review(first["id"], "Checked against the recording", verdict="agree")
    assert review["motivation"] == "assessing"


def test_no_model_for_other_languages_and_no_audio(tmp_path):
    with pytest.raises(DataError, match="no speech model for language 'fr'"):
        media.transcribe(tmp_path / "x.wav", language="fr")
    text = tmp_path / "notes.vtt"
    text.write_text("WEBVTT\n")
    with pytest.raises(DataError, match="notes.vtt"):
        media.transcribe(text)
