"""The labelled corpus (examples/corpus/): its files, the consistency of its labels, its
coverage of kinds and languages, the README's account of it, and the byte-for-byte rebuild of
a sample (when espeak-ng and sox are installed)."""

from __future__ import annotations

import ctypes.util
import hashlib
import importlib
import json
import re
import shutil
import subprocess
import sys
import wave
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from turnfsm.quality.score import read_truth

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"
README = CORPUS / "README.md"
LANGUAGES = {"en", "es", "fr", "de", "pt", "it"}
EPS = 1e-6
NAMES = sorted(p.stem for p in CORPUS.glob("*.wav"))


def readme_kinds() -> dict[str, str]:
    """The kinds the README documents: the rows of the table under '## Kinds'."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Kinds", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_]+)` \| (.+?) \|$", section, re.M))


def load(name: str) -> tuple[dict[str, Any], dict[str, Any], float]:
    """A dialogue's truth, words sidecar and WAV length in seconds (checking the format)."""
    with wave.open(str(CORPUS / f"{name}.wav"), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 16000), name
        length = w.getnframes() / 16000
    truth = json.loads((CORPUS / f"{name}.truth.json").read_text(encoding="utf-8"))
    words = json.loads((CORPUS / f"{name}.words.json").read_text(encoding="utf-8"))
    return truth, words, length


def inside(a: float, b: float, spans: list[list[float]], tol: float = 0.0) -> bool:
    """Whether [a, b] lies inside one of ``spans`` (give or take ``tol``)."""
    return any(s - tol - EPS <= a and b <= e + tol + EPS for s, e in spans)


def test_every_dialogue_has_a_stereo_wav_and_both_sidecars() -> None:
    """At least 40 dialogues; each is 16 kHz 16-bit stereo with a truth and a words file,
    and no sidecar lacks its WAV."""
    assert len(NAMES) >= 40
    stems = {p.name.split(".")[0] for p in CORPUS.glob("*.json")}
    assert stems == set(NAMES)
    for name in NAMES:
        for suffix in (".truth.json", ".words.json"):
            assert (CORPUS / f"{name}{suffix}").is_file(), f"{name}{suffix}"
        load(name)


def test_the_folder_stays_small() -> None:
    """The corpus folder is under 25 MB."""
    assert sum(p.stat().st_size for p in CORPUS.iterdir()) < 25_000_000


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_consistent(name: str) -> None:
    """Spans lie in the file and in order; turns and backchannels cover the user's speech
    and nothing else; pauses are the gaps between a turn's spans; barge-ins, backchannels
    and coughs lie over the agent; words lie in speech spans in time order; the metadata
    is from the documented sets."""
    truth, words, length = load(name)
    assert truth["sample_rate"] == 16000 and truth["channels"] == ["user", "agent"]
    assert abs(truth["duration"] - length) < 0.001
    speech = truth["speech"]
    for who in ("user", "agent"):
        spans = speech[who]
        assert spans, who
        for (a, b), (c, _) in pairwise(spans):
            assert a < b <= c, (who, a, b, c)
        assert spans[0][0] >= 0 and spans[-1][1] <= truth["duration"] + EPS

    turns, bcs = truth["turns"], truth["backchannels"]
    assert turns
    covered: list[list[float]] = []
    for t in turns:
        mine = [s for s in speech["user"] if t["start"] - EPS <= s[0] and s[1] <= t["end"] + EPS]
        assert mine and mine[0][0] == t["start"] and mine[-1][1] == t["end"], t
        assert t["intended_end"] == t["end"]
        assert t["pauses"] == [[a[1], b[0]] for a, b in pairwise(mine)]
        assert t["text"] and "<" not in t["text"]
        covered += mine
    for (t, u) in pairwise(turns):
        assert t["end"] < u["start"]
    for b in bcs:
        mine = [s for s in speech["user"] if b["start"] - EPS <= s[0] and s[1] <= b["end"] + EPS]
        assert mine and mine[0][0] == b["start"] and mine[-1][1] == b["end"], b
        assert inside(b["start"], b["end"], speech["agent"]), b
        covered += mine
    assert sorted(covered) == speech["user"], "every user span is in one turn or backchannel"

    agents = truth["agent_turns"]
    assert [[a["start"], a["end"]] for a in agents] == [
        [a["start"], a["end"]] for a in agents if a["start"] < a["end"]]
    for i in truth["interruptions"]:
        assert any(t["start"] == i["start"] and t["end"] == i["end"] for t in turns), i
        cut = [a for a in agents if a["interrupted_at"] == i["start"]]
        assert len(cut) == 1 and cut[0]["end"] == i["agent_stops_at"]
        assert cut[0]["start"] < i["start"] < i["agent_stops_at"]

    assert truth["language"] in LANGUAGES and words["language"] == truth["language"]
    kinds = readme_kinds()
    assert truth["kind"] and all(k in kinds for k in truth["kind"]), truth["kind"]
    assert truth["synthesis"] in ("parts", "ssml")
    if truth["synthesis"] == "ssml":
        assert any(t["pauses"] for t in turns), "an SSML dialogue has a pause inside a turn"
    assert isinstance(truth["voice"], str) and 140 <= truth["rate"] <= 200
    assert isinstance(truth["agent_voice"], str) and isinstance(truth["agent_rate"], int)
    noise = truth["noise"]
    assert noise is None or (noise["kind"] in ("pink", "babble") and noise["channel"] == "user"
                             and 10 <= noise["snr_db"] <= 20 and isinstance(noise["seed"], int))
    for e in truth["events"]:
        assert e["kind"] == "cough" and e["channel"] == "user"
        assert inside(e["start"], e["end"], speech["agent"]), e
        assert not any(s < e["end"] and e["start"] < t for s, t in speech["user"]), e
    assert ("cough" in truth["kind"]) == bool(truth["events"])
    assert ("backchannel" in truth["kind"]) == bool(bcs)
    assert ("barge_in" in truth["kind"]) == bool(truth["interruptions"])

    rows = words["words"]
    assert [w["start"] for w in rows] == sorted(w["start"] for w in rows)
    user_words = [w for w in rows if w["channel"] == "user"]
    assert " ".join(w["word"] for w in user_words) == " ".join(
        x["text"] for x in sorted([*turns, *bcs], key=lambda x: x["start"]))
    for w in rows:
        assert w["channel"] in ("user", "agent") and w["word"]
        assert 0 <= w["start"] <= w["end"] <= truth["duration"]
        # word times are rounded to the millisecond, spans are exact
        assert inside(w["start"], w["end"], speech[w["channel"]], tol=0.0005), w


@pytest.mark.parametrize("name", NAMES)
def test_each_pause_falls_between_the_parts_it_separates(name: str) -> None:
    """Where the description names a turn's parts ('a' ... 'b', said separately or as one
    SSML utterance with breaks), the words split at labelled pauses exactly there: the word
    times put the pause after the last word of a part and before the first of the next."""
    truth, words, _ = load(name)
    m = re.search(r"\(((?:'[^']*'(?: \.\.\. )?)+)\)", truth["description"])
    if m is None:
        pytest.skip("the description names no parts")
    parts = re.findall(r"'([^']*)'", m.group(1))
    turn = next(t for t in truth["turns"] if t["text"] == " ".join(parts))
    said = [w for w in words["words"] if w["channel"] == "user"
            and turn["start"] - EPS <= w["start"] <= turn["end"]]
    assert [w["word"] for w in said] == " ".join(parts).split()
    k = 0
    for part in parts[:-1]:
        k += len(part.split())
        last, first = said[k - 1], said[k]
        assert any(last["end"] <= a + 0.0005 and b - 0.0005 <= first["start"]
                   for a, b in turn["pauses"]), (part, last, first)


def test_the_score_reader_takes_every_truth_file() -> None:
    """`turnfsm score`'s reader reads each truth file with all its turns, backchannels and
    interruptions (the new fields change nothing it reads)."""
    for name in NAMES:
        truth, _, _ = load(name)
        t = read_truth(CORPUS / f"{name}.truth.json")
        assert (len(t.turns), len(t.backchannels), len(t.interruptions)) == (
            len(truth["turns"]), len(truth["backchannels"]), len(truth["interruptions"]))


def test_the_corpus_covers_every_kind_language_and_condition() -> None:
    """Every documented kind is present (and only those); each language has at least four
    dialogues and one SSML one; both noise kinds, several voices and speeds are present."""
    kinds = readme_kinds()
    truths = [load(n)[0] for n in NAMES]
    assert {k for t in truths for k in t["kind"]} == set(kinds)
    for lang in LANGUAGES:
        mine = [t for t in truths if t["language"] == lang]
        assert len(mine) >= 4, lang
        assert any(t["synthesis"] == "ssml" for t in mine), lang
    assert {t["noise"]["kind"] for t in truths if t["noise"]} == {"pink", "babble"}
    english = [t for t in truths if t["language"] == "en"]
    assert len({t["voice"] for t in english}) >= 5
    rates = [t["rate"] for t in english]
    assert min(rates) <= 140 and max(rates) >= 200


def test_the_readme_describes_every_file_and_the_script_documents_the_same_kinds() -> None:
    """The README's file table has one row per dialogue, and its kinds are the script's."""
    text = README.read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z]{2}\d\d_[a-z_]+)` \|", text, re.M)
    assert sorted(listed) == NAMES
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        make_corpus = importlib.import_module("make_corpus")
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert set(make_corpus.KINDS) == set(readme_kinds())


def _tools() -> str | None:
    """Why the sample cannot be rebuilt here, or None: it needs the espeak-ng and sox that
    made the files (another version synthesizes or resamples other samples)."""
    if shutil.which("sox") is None or ctypes.util.find_library("espeak-ng") is None:
        return "needs espeak-ng (libespeak-ng.so.1) and sox"
    lib = ctypes.CDLL("libespeak-ng.so.1")
    lib.espeak_Info.restype = ctypes.c_char_p
    espeak = lib.espeak_Info(None).decode()
    sox = subprocess.run(["sox", "--version"], capture_output=True, text=True).stdout
    if espeak != "1.51" or "v14.4.2" not in sox:
        return f"the files were made by espeak-ng 1.51 and SoX v14.4.2, not {espeak}, {sox}"
    return None


WHY_NOT = _tools()


@pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT))
def test_a_sample_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    """Two dialogues (a pink-noise English one in parts and a Spanish SSML one) rebuilt by
    scripts/make_corpus.py equal the committed WAVs and sidecars byte for byte."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        make_corpus = importlib.import_module("make_corpus")
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    sample = {"en31_noisy_spelling", "es04_ssml_preposition"}
    for scene in make_corpus.corpus_scenes(sample):
        make_corpus.write(scene, tmp_path)
    for name in sorted(sample):
        for suffix in (".wav", ".truth.json", ".words.json"):
            got = hashlib.sha256((tmp_path / f"{name}{suffix}").read_bytes()).hexdigest()
            want = hashlib.sha256((CORPUS / f"{name}{suffix}").read_bytes()).hexdigest()
            assert got == want, f"{name}{suffix} differs from the committed file"
