"""`turnfsm score`'s reading of a truth file's kinds, language and non-speech events: noise
turns, and the figures added up per kind and per language (``--by``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from turnfsm.cli import main
from turnfsm.quality.score import TruthError, read_truth, score_outputs

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"


def _truth(tmp_path: Path, **doc: Any) -> Path:
    base: dict[str, Any] = {"turns": [{"start": 1.0, "end": 2.0, "text": "one"},
                                      {"start": 5.0, "end": 6.0, "text": "two"}]}
    p = tmp_path / "s.truth.json"
    p.write_text(json.dumps(base | doc), encoding="utf-8")
    return p


def _eots(*ts: float) -> list[dict[str, Any]]:
    return [{"kind": "on_end_of_turn", "t": t} for t in ts]


def test_an_end_of_turn_after_a_cough_is_a_noise_turn_not_an_orphan(tmp_path: Path) -> None:
    """A cough between two turns that ends a turn of its own counts as a noise turn (named in
    the details), not as an orphan of the turn before it."""
    truth = read_truth(_truth(tmp_path, events=[
        {"channel": "user", "kind": "cough", "start": 3.0, "end": 3.3}]))
    s = score_outputs(_eots(2.6, 3.9, 6.6), truth)
    assert (s.turns, s.orphans, s.noise_turns, s.cut_ins) == (2, 0, 1, 0)
    assert "noise turn at 3.90 s (a cough at 3.00 s)" in s.details
    without = score_outputs(_eots(2.6, 3.9, 6.6), read_truth(_truth(tmp_path)))
    assert (without.orphans, without.noise_turns) == (1, 0)


def test_a_cough_inside_a_turn_leaves_the_turn_its_cut_in(tmp_path: Path) -> None:
    """A sound inside a labelled turn (before its intended end) belongs to the turn: an end
    of turn after it is still a cut-in; the agent channel's sounds are nobody's turn."""
    truth = read_truth(_truth(tmp_path, turns=[
        {"start": 1.0, "end": 4.0, "text": "one two", "pauses": [[2.0, 3.0]]}], events=[
        {"channel": "user", "kind": "cough", "start": 2.2, "end": 2.4},
        {"channel": "agent", "kind": "cough", "start": 6.0, "end": 6.2}]))
    assert len(truth.noises) == 1
    s = score_outputs(_eots(2.9, 4.7), truth)
    assert (s.cut_ins, s.noise_turns, s.orphans) == (1, 0, 0)


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": "list"}, None),
    ({"kind": [1]}, "kind must be a list of names"),
    ({"language": ""}, "language must be a language tag"),
    ({"events": [{"channel": "user", "start": "x", "end": 1}]},
     "events[0] needs numeric start and end"),
    ({"events": [{"channel": "user", "start": 2, "end": 1}]}, "events[0]: start must be <="),
    ({"events": ["cough"]}, "events[0] must be an object"),
])
def test_truth_kind_language_and_events_are_checked(tmp_path: Path, doc: dict[str, Any],
                                                    message: str | None) -> None:
    """A malformed kind, language or event is refused naming the file and the entry; a
    single kind given as a string is read as a list of one."""
    p = _truth(tmp_path, **doc)
    if message is None:
        assert read_truth(p).kinds == ("list",)
        return
    with pytest.raises(TruthError, match=r"s\.truth\.json: " + message.replace("[", r"\[")
                       .replace("]", r"\]")):
        read_truth(p)


def test_score_by_kind_and_language_adds_each_session_to_its_groups(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`score --by kind --by language --json`: a session counts under each of its kinds and
    its language, and each group's figures are its sessions' figures added up."""
    names = ["en01_list_eggs", "en03_spelling_smith", "de02_list"]
    rc = main(["score", *(str(CORPUS / f"{n}.wav") for n in names), "--by", "kind",
               "--by", "language", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    per = {n: doc["sessions"][f"{n}.wav"]["default"] for n in names}
    kinds = {n: read_truth(CORPUS / f"{n}.truth.json").kinds for n in names}
    for kind, figures in doc["by_kind"].items():
        mine = [n for n in names if kind in kinds[n]]
        assert figures["default"]["sessions"] == len(mine)
        for key in ("turns", "cut_ins", "orphans", "noise_turns"):
            assert figures["default"][key] == sum(per[n][key] for n in mine), (kind, key)
    assert set(doc["by_kind"]) == {k for n in names for k in kinds[n]}
    assert {k: v["default"]["sessions"] for k, v in doc["by_language"].items()} == {
        "de": 1, "en": 2}


def test_score_by_prints_a_table_per_grouping(capsys: pytest.CaptureFixture[str]) -> None:
    """The text form prints one table per ``--by`` under the sessions' table, each group
    named with how many sessions it holds, and an unlabelled file under '-'."""
    rc = main(["score", str(CORPUS / "en03_spelling_smith.wav"),
               str(ROOT / "examples" / "audio" / "hesitation.wav"), "--by", "kind"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "by kind" in out and "noise" in out.splitlines()[0]
    assert any(line.startswith("spelling (1 session)") for line in out.splitlines())
    assert any(line.startswith("- (1 session)") for line in out.splitlines())


def test_score_by_synthesis_groups_parts_and_ssml(capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path) -> None:
    """`score --by synthesis`: the corpus's separately synthesized parts apart from its SSML
    dialogues (continuation prosody kept); a malformed synthesis field is refused."""
    names = ["en01_list_eggs", "en42_ssml_list", "de02_list"]
    rc = main(["score", *(str(CORPUS / f"{n}.wav") for n in names), "--by", "synthesis",
               "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    assert {k: v["default"]["sessions"] for k, v in doc["by_synthesis"].items()} == {
        "parts": 2, "ssml": 1}
    assert read_truth(CORPUS / "en42_ssml_list.truth.json").synthesis == "ssml"
    with pytest.raises(TruthError, match="synthesis must be a name"):
        read_truth(_truth(tmp_path, synthesis=3))
