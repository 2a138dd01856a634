"""Time-coded formats on real files of other projects (tests/data/real/media/, sources and
licences in its SOURCES.md): the values a person reads in each file, round trips, and bad
files refused with the line or field named.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import echoes_lab
from echoes_lab import media
from echoes_lab.errors import DataError, UnsafeXMLError
from echoes_lab.media.timed import parse_fragment, read_iiif

REAL = Path(__file__).parent / "data" / "real" / "media"
SAME = ["start", "end", "speaker", "language", "text"]


def rows(table, **where):
    for key, value in where.items():
        table = table[table[key] == value]
    return table.reset_index(drop=True)


# -- WebVTT and SubRip (Ramp, Indiana University / Samvera: "Lunchroom Manners", 1960) -------------

def test_webvtt_cues_times_and_text_with_regions_styles_and_notes_skipped():
    t = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt")
    assert list(t.columns[:7]) == media.COLUMNS
    assert len(t) == 107
    assert t.iloc[0][["start", "end", "text"]].tolist() == [1.2, 21.0, "[music]"]
    # cue 2 is "<em>Just</em> before lunch one day, a puppet show \nwas put on at school."
    assert t.iloc[1][["start", "end", "text"]].tolist() == [
        22.2, 26.6, "Just before lunch one day, a puppet show was put on at school."]
    assert t.iloc[-1][["start", "end", "text"]].tolist() == [
        552.1, 557.6, "Have good lunchtime manners and lunch will be more fun for everyone."]


def test_subrip_twin_of_the_webvtt_gives_the_same_table():
    vtt = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt")
    srt = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.srt")
    pd.testing.assert_frame_equal(vtt[["start", "end", "text"]], srt[["start", "end", "text"]])


def test_webvtt_round_trip_keeps_speakers_and_language(tmp_path):
    ohms = echoes_lab.read_timed(REAL / "scihist-small-sample-vtt-ohms.xml").assign(language="en")
    back = echoes_lab.read_timed(media.write_vtt(ohms, tmp_path / "t.vtt"))
    pd.testing.assert_frame_equal(back[SAME], ohms[SAME])
    assert back.speaker.iloc[0] == "SCHNEIDER"


@pytest.mark.parametrize(("text", "line", "what"), [
    ("WEBVTT\n\n1\n00:00:01.000 --> 00:0x:02.000\nhello\n", 4, "cue timing"),
    ("WEBVTT\n\n00:00:05.000 --> 00:00:02.000\nhello\n", 3, "before it starts"),
    ("Hello\n\n00:00:01.000 --> 00:00:02.000\nhello\n", 1, "starts with 'WEBVTT'"),
])
def test_bad_webvtt_names_the_line(tmp_path, text, line, what):
    path = tmp_path / "bad.vtt"
    path.write_text(text)
    with pytest.raises(DataError, match=rf"bad.vtt, line {line}: .*{what}"):
        echoes_lab.read_timed(path)


# -- ELAN (pympi-ling's sample made with ELAN 4.8, EAF 2.8) ----------------------------------------

def test_elan_tiers_languages_vocabularies_and_unaligned_slots():
    t = echoes_lab.read_timed(REAL / "pympi-sample_2.8.eaf")
    assert t.tier.value_counts().to_dict() == {
        "words-timesub": 1995, "words-symsub": 1995, "words-pos": 1995, "gestures": 1197,
        "gest_included": 1197, "text": 399}
    text = rows(t, tier="text")
    assert text.iloc[0][["start", "end", "text", "language"]].tolist() == [
        2.0, 5.0, "The quick brown fox 001", "eng"]
    assert t.source.iloc[0] == "file:///Users/Shared/MPI/DemoMaterial/yele/r03_v20_s5.wav"
    assert t.attrs["languages"]["nld"] == "Dutch (nld)"
    assert t.attrs["vocabularies"]["POS"] == {"v": "verb", "n": "noun", "adj": "adjective"}
    assert t.attrs["vocabularies"]["Gesture"]["retr"] == "retraction"
    words = rows(t, tier="words-timesub")
    # TIME_SLOT ts37/ts38 = 7800/8000 ms; "The quick brown fox 003" has unaligned slots
    # (ts39-ts42 without TIME_VALUE) between 8000 and 11000 ms: ELAN spreads them evenly
    assert words.iloc[6][["start", "end", "text", "aligned"]].tolist() == [
        5.47, 6.27, "quick", True]
    assert words.iloc[10][["start", "end", "text", "aligned"]].tolist() == [
        8.0, 8.6, "The", False]
    assert words.iloc[14][["end", "text"]].tolist() == [11.0, "003"]
    # symbolic tiers take their parent's times: the part of speech of "quick" is "adj"
    assert rows(t, tier="words-pos").iloc[1][["start", "end", "text"]].tolist() == [
        2.0, 5.0, "adj"]


def test_elan_example_two_speakers_words_parts_of_speech_and_gestures():
    """ELAN's own example (a route description in Nijmegen, EAF 2.3): tiers per speaker
    (K-, W-), a word tier subdividing W's utterances in time, parts of speech on the words."""
    t = echoes_lab.read_timed(REAL / "elan-example1-poio.eaf")
    assert rows(t, tier="K-Spch").text.tolist()[:2] == ["so from here.", "yeah"]
    w = rows(t, tier="W-Spch").iloc[0]
    # a8: ts4 (780 ms) to ts23 (4090 ms)
    assert (w.start, w.end, w.language) == (0.78, 4.09, "en")
    assert w.text == "so you go out of the Institute to the Saint Anna Straat."
    words = rows(t, tier="W-Words")
    assert words.text.tolist()[:4] == ["so", "you", "go", "out"]
    assert words.iloc[1][["start", "end"]].tolist() == [1.34, 1.57]
    # a part of speech (a reference to a word) takes that word's times: "you" is a pronoun
    pos = rows(t, tier="W-POS")
    assert pos.iloc[1][["start", "end", "text"]].tolist() == [1.34, 1.57, "pro"]
    assert t.attrs["vocabularies"]["POS"]["pro"] == "pronoun"
    assert t.attrs["vocabularies"]["Gesture phases"]["part.retraction"] == "partial retraction"
    assert t.source.iloc[0] == "file:///D:/Data/elan/elan-example1.mpg"


def test_elan_round_trip(tmp_path):
    t = echoes_lab.read_timed(REAL / "pympi-sample_2.8.eaf")
    part = t[t.tier.isin(["text", "gestures"])].reset_index(drop=True)
    back = echoes_lab.read_timed(media.write_eaf(part, tmp_path / "t.eaf", media="a.wav"))
    pd.testing.assert_frame_equal(back[["tier", *SAME]], part[["tier", *SAME]])
    assert back.attrs["vocabularies"] == t.attrs["vocabularies"]


def test_elan_speakers_become_participants(tmp_path):
    ohms = echoes_lab.read_timed(REAL / "scihist-small-sample-vtt-ohms.xml").iloc[:-1]
    eaf = tmp_path / "s.eaf"
    media.write_eaf(ohms, eaf)
    back = echoes_lab.read_timed(eaf)
    assert set(back.tier) == {"transcript - SCHNEIDER", "transcript - NAME OF INTERVIEWEE"}
    assert 'PARTICIPANT="SCHNEIDER"' in eaf.read_text()
    pd.testing.assert_frame_equal(back[["start", "end", "speaker", "text"]],
                                  ohms[["start", "end", "speaker", "text"]])


def test_elan_undefined_time_slot_names_the_line(tmp_path):
    text = (REAL / "pympi-sample_2.8.eaf").read_text()
    lines = text.splitlines()
    n = next(i for i, x in enumerate(lines) if 'TIME_SLOT_REF1="ts2"' in x)
    lines[n] = lines[n].replace('TIME_SLOT_REF1="ts2"', 'TIME_SLOT_REF1="ts99999"')
    bad = tmp_path / "bad.eaf"
    bad.write_text("\n".join(lines))
    with pytest.raises(DataError, match=rf"bad.eaf, line {n + 1}: annotation a1 has "
                                        "TIME_SLOT_REF1='ts99999'"):
        echoes_lab.read_timed(bad)


def test_xml_with_a_dtd_is_refused(tmp_path):
    bad = tmp_path / "bomb.eaf"
    bad.write_text('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "y">]><ANNOTATION_DOCUMENT/>')
    with pytest.raises(UnsafeXMLError, match="DTD"):
        echoes_lab.read_timed(bad)


# -- Praat TextGrid (praatio's examples) -----------------------------------------------------------

def test_textgrid_short_and_long_formats_intervals_and_points():
    bobby = echoes_lab.read_timed(REAL / "praatio-bobby_words.TextGrid")
    assert rows(bobby, tier="phrase").text.tolist() == ["BOBBY RIPPED THE LEDGER"]
    assert rows(bobby, tier="word").text.tolist() == ["BOBBY", "RIPPED", "THE", "LEDGER"]
    assert rows(bobby, tier="word").start.iloc[0] == pytest.approx(0.06469123242311078)
    mary = echoes_lab.read_timed(REAL / "praatio-mary_longfile.TextGrid")
    words = rows(mary, tier="word")
    assert words.text.tolist() == ["mary", "rolled", "the", "barrel"]
    assert words.end.iloc[-1] == pytest.approx(1.5182538944627297)
    pitch = rows(mary, tier="pitch")  # a point tier: end == start
    assert pitch.text.tolist() == ["120", "85", "97", "104"]
    assert (pitch.start == pitch.end).all()
    assert mary.attrs["duration"] == pytest.approx(1.869687)


@pytest.mark.parametrize(("old", "new", "line", "what"), [
    ("xmin = 0.06469123242311078 \n            xmax = 0.41156462585",
     "xmin = 0.06469123242311078 \n            xmax = 0.01", 21, "xmax = 0.01 is before"),
    ("xmax = 0.41156462585", "xmax = 0,41", 21, "xmax = '0,41' is not a time"),
])
def test_bad_textgrid_names_the_line(tmp_path, old, new, line, what):
    text = (REAL / "praatio-bobby_words.TextGrid").read_text()
    assert old in text
    bad = tmp_path / "bad.TextGrid"
    bad.write_text(text.replace(old, new, 1))
    with pytest.raises(DataError, match=rf"bad.TextGrid, line {line}: {what}"):
        echoes_lab.read_timed(bad)


# -- OHMS (Science History Institute) --------------------------------------------------------------

def test_ohms_index_points_sync_and_record():
    t = echoes_lab.read_timed(REAL / "scihist-duarte_OH0344.xml")
    index = rows(t, tier="index")
    assert len(index) == 7
    second = index.iloc[1]
    assert (second.start, second.end, second.text) == (212.0, 573.0, "Growing up with Gordon Moore")
    assert second.keywords == ["Azores", "Gordon E. Moore", "Half Moon Bay", "Pescadero",
                               "ranching", "San Mateo", "sheriff", "Walter E. Moore", "whaling",
                               "Williamson family"]
    assert second.synopsis.startswith("Gordon Moore’s mother Myra.")
    assert index.end.iloc[-1] == 1686.0  # <duration>0:28:06</duration>
    assert t.attrs["interviewee"] == "Ronald Duarte"
    assert t.source.iloc[0].endswith("ee51c131a493f8a8b18f2a42288ca886.mp3")
    sync = rows(t, tier="sync")  # <sync>1:|13(3)|19(14)|…|308(2)</sync>
    assert len(sync) == 28
    assert sync.iloc[0][["start", "line", "word"]].tolist() == [60.0, 13, 3]
    assert sync.iloc[-1][["start", "line", "word"]].tolist() == [28 * 60.0, 308, 2]


def test_ohms6_vtt_transcript_speakers_and_open_last_cue():
    t = echoes_lab.read_timed(REAL / "scihist-small-sample-vtt-ohms.xml")
    assert len(t) == 6
    first = t.iloc[0]
    assert (first.start, first.end, first.speaker) == (3603.0, 3618.0, "SCHNEIDER")
    assert first.text.startswith("Today is December 16, 2024.")
    # <br><br> between paragraphs keeps the words apart
    assert "interest in learning. One day, we got lost" in t.text.iloc[3]
    # the last cue is written "01:01:22.000 --> 00:00:00.000" (until the end; no duration)
    assert (t.start.iloc[-1], t.end.iloc[-1]) == (3682.0, 3682.0)


def test_ohms_bad_index_time_names_the_line(tmp_path):
    text = (REAL / "scihist-duarte_OH0344.xml").read_text().replace("<time>212</time>",
                                                                    "<time>3:32</time>")
    bad = tmp_path / "bad.xml"
    bad.write_text(text)
    with pytest.raises(DataError, match=r"bad.xml, line 70: index point <time> '3:32'"):
        echoes_lab.read_timed(bad)


# -- IIIF Presentation 3 AV (Ramp's manifest with transcript annotations) --------------------------

def test_iiif_av_manifest_duration_media_captions_and_time_annotations():
    t = echoes_lab.read_timed(REAL / "ramp-transcript-annotation.json")
    assert t.attrs["duration"] == 572.034
    assert t.attrs["media"].endswith("lunchroom_manners/high/lunchroom_manners_1024kb.mp4")
    assert t.attrs["captions"][0]["language"] == "en"
    assert len(t) == 12 and set(t.tier) == {"supplementing"}
    assert t.iloc[0][["start", "end", "text"]].tolist() == [
        22.2, 26.6, "Just before lunch one day, a puppet show was put on at school."]
    assert t.source.iloc[0].endswith("/transcript-annotation/canvas/1")
    # the same words at the same times as the film's WebVTT captions
    vtt = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt")
    both = t.merge(vtt, on=["start", "end"])
    assert len(both) == 12 and (both.text_x == both.text_y).all()


def test_iiif_cookbook_opera_table_of_contents_as_time_ranges():
    """IIIF Cookbook recipe 0026: Donizetti's L'Elisir d'Amore, one video canvas of 7278.422 s
    and Ranges on canvas#t=…; Atto Secondo's range is open-ended (t=3971.24)."""
    t = echoes_lab.read_timed(REAL / "cookbook-0026-toc-opera.json")
    assert t.attrs["duration"] == 7278.422
    assert t.attrs["media"].endswith("donizetti-elixir/vae0637_accessH264_low.mp4")
    assert t[["start", "end", "language", "text"]].values.tolist() == [
        [0.0, 302.05, "it", "Preludio e Coro d'introduzione – Bel conforto al mietitore"],
        [302.05, 3971.24, "en", "Remainder of Atto Primo"],
        [3971.24, 7278.422, "it", "Atto Secondo"]]
    assert set(t.tier) == {"structures"}


def test_iiif_manifest_round_trip_validated_by_prezi3(tmp_path):
    vtt = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt").assign(language="en")
    out = media.write_manifest(vtt, tmp_path / "m.json", media="https://example.org/lm.mp4",
                               duration=572.034, kind="Video",
                               manifest_id="https://example.org/iiif/lm/manifest.json",
                               label="Lunchroom Manners")
    doc = json.loads(out.read_text())
    assert doc["items"][0]["duration"] == 572.034
    first = doc["items"][0]["annotations"][0]["items"][1]
    assert first["target"] == "https://example.org/iiif/lm/canvas/1#t=22.2,26.6"
    back = read_iiif(out)
    pd.testing.assert_frame_equal(back[["tier", *SAME]], vtt[["tier", *SAME]])
    assert back.attrs["media"] == "https://example.org/lm.mp4"


def test_iiif_writer_refuses_what_prezi3_refuses_and_times_past_the_end(tmp_path):
    vtt = echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt")
    with pytest.raises(DataError, match="field id"):
        media.write_manifest(vtt, tmp_path / "m.json", media="https://example.org/a.mp4",
                             duration=600, manifest_id="not an iri")
    with pytest.raises(DataError, match="after the end of the recording"):
        media.write_manifest(vtt, tmp_path / "m.json", media="https://example.org/a.mp4",
                             duration=100, manifest_id="https://example.org/m.json")


def test_iiif_bad_target_fragment_names_the_annotation(tmp_path):
    doc = json.loads((REAL / "ramp-transcript-annotation.json").read_text())
    ann = doc["items"][0]["annotations"][0]["items"][2]
    ann["target"] = ann["target"].replace("#t=31.6,34.5", "#t=34.5,31.6")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"annotations\[0\]\.items\[2\]: target: .*start"):
        echoes_lab.read_timed(bad)
    bad.write_text('{"@context": "http://iiif.io/api/presentation/2/context.json"}')
    with pytest.raises(DataError, match="not a IIIF Presentation 3 Manifest"):
        echoes_lab.read_timed(bad)


# -- W3C Media Fragments URI 1.0 §4.2.1 ------------------------------------------------------------

@pytest.mark.parametrize(("frag", "expected"), [
    # the specification's own examples (§4.2.1, Normal Play Time)
    ("t=10,20", (10.0, 20.0)),
    ("t=npt:10,20", (10.0, 20.0)),
    ("t=,20", (0.0, 20.0)),
    ("t=10", (10.0, None)),
    ("t=npt:,121.5", (0.0, 121.5)),
    ("t=0:02:00,121.5", (120.0, 121.5)),
    ("t=npt:120,0:02:01.5", (120.0, 121.5)),
    ("https://example.org/canvas/1#t=723,761", (723.0, 761.0)),
    ("xywh=1,2,3,4&t=1.5,2", (1.5, 2.0)),
])
def test_media_fragment_grammar_accepts(frag, expected):
    assert parse_fragment(frag) == expected


@pytest.mark.parametrize("frag", [
    "t=20,10", "t=10,10", "t=npt:120,", "t=00:07:53,900,00:07:56,500", "t=1:60:00",
    "t=smpte:0:02:00", "t=clock:2011-01-01T12:00:00Z", "t=abc", "xywh=1,2,3,4",
])
def test_media_fragment_grammar_refuses(frag):
    with pytest.raises(DataError):
        parse_fragment(frag)


def test_search_across_transcripts():
    tables = {"duarte": echoes_lab.read_timed(REAL / "scihist-duarte_OH0344.xml"),
              "lunchroom": echoes_lab.read_timed(REAL / "ramp-lunchroom_manners.vtt")}
    hits = media.search(tables, "gordon moore")
    assert set(hits.transcript) == {"duarte"}
    assert hits.text.tolist()[:2] == ["Growing up with Gordon Moore", "Gordon Moore’s family"]
    assert media.search(tables, "Mr. Bungle").transcript.unique().tolist() == ["lunchroom"]


def test_unknown_format_and_missing_file():
    with pytest.raises(DataError, match="give format="):
        echoes_lab.read_timed(REAL / "SOURCES.md")
    with pytest.raises(DataError, match="no such file"):
        echoes_lab.read_timed(REAL / "absent.vtt")


# -- the player widget (its Python side; the browser side in integration/test_browser_media.py) ----

def test_player_clicked_line_fills_the_range_and_annotates_into_the_commons(tmp_path,
                                                                            monkeypatch):
    from echoes_lab import commons
    from echoes_lab.media.widget import Player

    monkeypatch.delenv("ECHOES_COMMONS_URL", raising=False)
    monkeypatch.setenv("ECHOES_COMMONS_DB", str(tmp_path / "commons.sqlite"))
    monkeypatch.setattr(commons, "_current", None)
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF....WAVEfmt ")  # embedded as it is: the browser decodes it
    table = echoes_lab.read_timed(REAL / "scihist-small-sample-vtt-ohms.xml")
    box = media.player(table, wav, media="https://archive.example.org/oh/1.mp3")
    play = box.children[0]
    assert isinstance(play, Player) and play.src.startswith("data:audio/")
    assert play.cues[0] == {"start": 3603.0, "end": 3618.0, "speaker": "SCHNEIDER",
                            "text": table.text.iloc[0]}
    form = {type(w).__name__ + ":" + getattr(w, "description", ""): w
            for row in box.children[1:] for w in (row.children if hasattr(row, "children")
                                                   else [row])}
    play.clicked = 3  # what a click on the fourth line sends from the browser
    assert (form["BoundedFloatText:from (s)"].value, form["BoundedFloatText:to (s)"].value) == (
        3638.0, 3674.0)
    form["Dropdown:about"].value = "place"
    form["Text:note"].value = "Museum of Natural History, Washington"
    form["Button:Annotate this range"].click()
    found = commons.annotations(tag="place")
    assert found.selector.tolist() == ["t=3638,3674"]
    assert found.target.tolist() == ["https://archive.example.org/oh/1.mp3"]
    assert found.text.tolist() == ["Museum of Natural History, Washington"]
    play.current_time = 3700.25  # the player moved on; "to = now" takes its time
    form["Button:to = now"].click()
    assert form["BoundedFloatText:to (s)"].value == 3700.25


# -- probing recordings (PyAV) --------------------------------------------------------------------

def test_probe_reads_what_the_file_says(tmp_path):
    import wave

    import av
    import numpy as np

    wav = tmp_path / "stereo.wav"
    with wave.open(str(wav), "wb") as w:  # 1.5 s of stereo 16-bit silence at 8 kHz
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(bytes(12000 * 2 * 2))
    info = media.probe(wav)
    assert info["audio"] == {"codec": "pcm_s16le", "channels": 2, "sample_rate": 8000,
                             "duration": 1.5}
    assert info["duration"] == 1.5 and info["video"] is None and info["format"] == "wav"

    film = tmp_path / "film.mp4"  # 10 frames at 5 frames per second, 64 × 48
    with av.open(str(film), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), i * 20, np.uint8),
                                               format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    video = media.probe(film)["video"]
    assert (video["codec"], video["width"], video["height"], video["fps"]) == (
        "mpeg4", 64, 48, 5.0)
    assert media.probe(film)["duration"] == pytest.approx(2.0, abs=0.2)
    with pytest.raises(DataError, match="neither an audio nor a video stream|not an audio"):
        media.probe(REAL / "ramp-lunchroom_manners.vtt")
