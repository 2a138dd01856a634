"""Transcription: word error rate by synthetic voice, real-time factor and memory.

A known text is spoken by espeak-ng in several voices and transcribed by
``echoes_lab.media.transcribe`` (PocketSphinx 5, the model its package ships); the word error
rate (WER, Levenshtein distance over words / reference words; Morris, Maier and Green,
"From WER and RIL to MER and WIL", Interspeech 2004, as ``jiwer`` computes it) is reported
with and without the dither the transcriber adds. Then a longer recording (the passage
repeated, ``--minutes``) gives the real-time factor (processing time / audio duration, decoding
included) and the process's peak resident memory, each transcription in a fresh process.

Usage: ``.venv/bin/python benchmarks/media.py [--minutes 2] [--voices en-us+klatt,en-us]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TEXT = ("My grandmother taught me basket weaving in the village. "
        "We gathered willow by the river in the spring. "
        "My grandfather played the fiddle at every wedding.")
PASSAGE = (
    "My grandmother taught me basket weaving in the village. We gathered willow by the river "
    "in the spring, and we soaked it for two days before we could bend it. My grandfather "
    "played the fiddle at every wedding, and the dancers sang the old songs until morning. "
    "When the mill closed, many families left for the city, but some of us stayed and kept "
    "the market going every Saturday. ")
VOICES = ["en-us+klatt@160", "en-us+klatt@140", "en-us+klatt6@160", "en-us+edward@160",
          "en-us@140", "en-gb-x-rp@140", "en-us+f3@140"]

CHILD = """
import json, resource, sys, time
import numpy as np
from echoes_lab.media import speech
if sys.argv[2] == "0":
    speech.DITHER = 0.0
t0 = time.perf_counter()
table = speech.transcribe(sys.argv[1])
use = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"text": " ".join(table.text), "elapsed": time.perf_counter() - t0,
                  "cpu": use.ru_utime + use.ru_stime,
                  "seconds": table.attrs["seconds"],
                  "peak_mb": use.ru_maxrss / 1024}))
"""


def speak(text: str, voice: str, path: Path) -> None:
    name, _, speed = voice.partition("@")
    subprocess.run(["espeak-ng", "-v", name, "-s", speed or "140", "-w", str(path), text],
                   check=True)


def transcribe(path: Path, dither: bool = True) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), "1" if dither else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import jiwer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--voices", default=",".join(VOICES))
    args = parser.parse_args()
    norm = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(),
                          jiwer.RemoveMultipleSpaces(), jiwer.Strip()])
    print(f"cores: {os.cpu_count()}, load average at start: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "t.wav"
        print("| voice @ words/min | WER, dithered | WER, not dithered | transcript (dithered) |")
        print("|---|---|---|---|")
        for voice in args.voices.split(","):
            speak(TEXT, voice, wav)
            on, off = transcribe(wav, True), transcribe(wav, False)
            w_on = jiwer.wer(norm(TEXT), norm(on["text"]))
            w_off = jiwer.wer(norm(TEXT), norm(off["text"]))
            print(f"| {voice} | {w_on:.2f} | {w_off:.2f} | {on['text']} |")
        # the long recording: the passage repeated to the asked length (about 55 s a passage)
        speak(PASSAGE, "en-us+klatt@160", wav)
        from echoes_lab.media import probe

        repeat = max(1, round(args.minutes * 60 / probe(wav)["duration"]))
        speak(PASSAGE * repeat, "en-us+klatt@160", wav)
        t0 = time.perf_counter()
        r = transcribe(wav)
        wall = time.perf_counter() - t0
        wer = jiwer.wer(norm(PASSAGE * repeat), norm(r["text"]))
        print(f"\nlong recording: {r['seconds']:.0f} s of audio, transcribed in "
              f"{r['elapsed']:.1f} s (real-time factor {r['elapsed'] / r['seconds']:.2f}; "
              f"{wall:.1f} s with interpreter start; CPU time {r['cpu']:.1f} s, "
              f"CPU real-time factor {r['cpu'] / r['seconds']:.2f}), WER {wer:.2f}, peak RSS "
              f"{r['peak_mb']:.0f} MB; load average now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
