"""For each reference defect turnfsm fixes: what the reference did, and what turnfsm does.

The reference's behaviour is its recorded output (tests/conformance/*/expected); turnfsm's is
a fresh replay of the same trace.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.conformance.support import expected_path, parse_lines, trace_path
from turnfsm.replay import replay_file

Lines = list[dict[str, Any]]


def both(name: str, diagnostics: bool = False) -> tuple[Lines, Lines]:
    ref = parse_lines(expected_path(name).read_text(encoding="utf-8"))
    ours = parse_lines(replay_file(trace_path(name), diagnostics=diagnostics))
    return ref, ours


def kinds(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [x for x in lines if x["kind"] == kind]


def eots(lines: list[dict[str, Any]]) -> list[str]:
    return [x["new_transcript"] for x in kinds(lines, "on_end_of_turn")]


def finals(lines: list[dict[str, Any]]) -> list[str]:
    return [x["text"] for x in kinds(lines, "on_final_transcript")]


def test_d1_clear_cancels_pending_end_of_turn() -> None:
    """D1: the reference delivers an empty turn after a clear; turnfsm delivers nothing."""
    ref, ours = both("extra/x34_clear_during_pending_eou_vad")
    assert "" in eots(ref)
    assert "" not in eots(ours)


def test_d2_clear_resets_turn_start() -> None:
    """D2: after a clear the reference reports the cleared speech's start; turnfsm does not."""
    ref, ours = both("public/50_clear_user_turn_mid_turn")
    clear_t = 2.0
    assert kinds(ref, "on_end_of_turn")[0]["started_speaking_at"] < clear_t
    assert kinds(ours, "on_end_of_turn")[0]["started_speaking_at"] >= clear_t


def _turn_starts(lines: Lines) -> list[tuple[float, float | None, float | None]]:
    return [(x["t"], x["started_speaking_at"], x["stopped_speaking_at"])
            for x in kinds(lines, "on_end_of_turn")]


def test_d4_speech_going_on_through_a_delivery_starts_the_next_turn_at_it() -> None:
    """D4/I7 (issue 20): a speech run through an accepted delivery (stt mode, and a commit in
    vad mode while the user talks on): the reference reports the next turn's start after its
    stop (or the delivered turn's onset to preemptive generation); turnfsm starts that turn
    at the delivery (2.5), with the reference's timing."""
    ref, ours = both("extra/x44a_stt_speech_run_through_delivery")
    assert _turn_starts(ref)[1] == (3.6, 3.5, 3.1)
    assert _turn_starts(ours) == [(2.5, 0.78, 2.0), (3.6, 2.5, 3.1)]
    ref, ours = both("extra/x44b_vad_commit_while_speaking_run_goes_on")
    pre = [x["started_speaking_at"] for x in kinds(ref, "on_preemptive_generation")]
    assert pre == [0.78, 0.78]
    assert [x["started_speaking_at"] for x in kinds(ours, "on_preemptive_generation")] == [
        0.78, 2.5]
    assert _turn_starts(ours)[1] == (3.6, 2.5, 3.1)


def test_d4_the_onset_fix_keeps_the_reference_anchor() -> None:
    """D4/spec 6.3 (issue 20): an utterance that ends inside the previous turn's wait is timed
    from its real last speech, as in the reference (3.7); its metrics are absent since all
    of its speech lies before the delivery it must start after."""
    ref, ours = both("extra/x45_stt_next_utterance_inside_wait_keeps_anchor")
    assert _turn_starts(ref)[1] == (3.7, 3.3, 2.9)
    assert _turn_starts(ours)[1] == (3.7, None, None)


def test_d6_missing_timestamps_do_not_lose_the_interruption() -> None:
    """D6: the reference loses the interrupting 'stop'; turnfsm reports it and ends the turn."""
    ref, ours = both("public/37_overlap_interruption_no_timestamps_lost")
    assert "stop" not in finals(ref) and eots(ref) == []
    assert "stop" in finals(ours) and eots(ours) == ["stop"]


def test_d11_marker_grammar() -> None:
    """D11: the reference sends overlap-ended after agent-ended; turnfsm never does."""
    ref, ours = both("public/36_overlap_interruption_held_then_released")

    def after_agent_end(lines: list[dict[str, Any]]) -> int:
        sig = [x["signal"] for x in kinds(lines, "overlap_signal")]
        return sum(1 for a, b in itertools.pairwise(sig)
                   if a == "agent_speech_ended" and b == "overlap_speech_ended")
    assert after_agent_end(ref) >= 1
    assert after_agent_end(ours) == 0
    assert eots(ref) == eots(ours)


def test_d14_stt_end_closes_vad_segment() -> None:
    """D14: the reference keeps a stale onset after an STT end of speech; turnfsm does not."""
    ref, ours = both("public/23_stt_mode_eos_while_vad_speaking")
    r = [x["speech_start_time"] for x in kinds(ref, "on_start_of_speech")]
    o = [x["speech_start_time"] for x in kinds(ours, "on_start_of_speech")]
    assert r[-1] < 1.0 < o[-1]  # the STT start after the new VAD segment


def test_d15_skip_reply_is_sticky() -> None:
    """D15: a final during the commit's wait makes the reference reply; turnfsm keeps skip_reply."""
    ref, ours = both("extra/x35_commit_skip_reply_overridden_by_final")
    assert kinds(ref, "on_end_of_turn")[-1]["skip_reply"] is False
    assert kinds(ours, "on_end_of_turn")[-1]["skip_reply"] is True


def test_d16_manual_commit_survives_new_speech() -> None:
    """D16: the reference drops the committed turn and later speech; turnfsm delivers both."""
    ref, ours = both("public/29_manual_eou_cancelled_by_speech_stuck")
    assert "and the window" not in " ".join(eots(ref))
    assert eots(ours) == ["Open the door", "and the window please"]


def test_d19_promoted_interim_is_a_real_final() -> None:
    """D19: the reference's promoted interim has no language/confidence; turnfsm keeps them."""
    ref, ours = both("public/26_manual_commit_timeout_interim")
    r = next(x for x in kinds(ref, "on_final_transcript") if x["input"] is None)
    o = next(x for x in kinds(ours, "on_final_transcript") if x["input"] is None)
    assert (r["language"], r["confidence"]) == ("", 0.0)
    assert o["language"] == "en" and o["confidence"] > 0


def test_d22_nonspecific_languages_ignored() -> None:
    """D22: the reference asks the model about 'multi'; turnfsm never does."""
    ref, ours = both("extra/x09_model_language_multi_auto")

    def langs(lines: list[dict[str, Any]]) -> set[Any]:
        return {x.get("language") for x in kinds(lines, "turn_detector")}
    assert "multi" in langs(ref)
    assert not {"multi", "auto", ""} & langs(ours)


def test_d24_promoted_text_not_duplicated() -> None:
    """D24: the reference delivers 'Call my mom Call my mom'; turnfsm delivers it once."""
    ref, ours = both("extra/x36_commit_preflight_recency_duplicate")
    assert any("Call my mom Call my mom" in t for t in eots(ref))
    assert eots(ours) == ["Call my mom"]


def test_d27_detaching_vad_releases_held_transcripts() -> None:
    """D27: the reference strands a held final when the VAD goes; turnfsm releases it."""
    ref, ours = both("extra/x29_set_vad_false_while_events_held")
    assert "excuse me" not in finals(ref)
    assert "excuse me" in finals(ours)


def test_d33_max_delay_not_learned_from_agent_latency() -> None:
    """D33: the reference shortens the 'unlikely' wait after a fast agent; turnfsm does not."""
    ref, ours = both("public/55_dynamic_endpointing")
    r = [x["end_of_turn_delay"] for x in kinds(ref, "on_end_of_turn")]
    o = [x["end_of_turn_delay"] for x in kinds(ours, "on_end_of_turn")]
    assert 1.75 in r and 2.0 in o


def test_dropped_transcripts_are_recorded() -> None:
    """I3: a transcript discarded under the backchannel rule leaves a drop record."""
    _, ours = both("public/38_backchannel_early_dropped", diagnostics=True)
    drops = kinds(ours, "transcript_dropped")
    assert [(d["text"], d["reason"]) for d in drops] == [
        ("uh", "backchannel_trim"), ("uh-huh", "backchannel_trim")]


def test_d3_clear_resets_the_turn_limit_counter() -> None:
    """D3: cleared words count toward the reference's limit; turnfsm forgets them."""
    ref, ours = both("extra/x39_clear_keeps_turn_limit_words")
    assert kinds(ref, "on_user_turn_exceeded")[0]["accumulated_word_count"] == 4
    assert kinds(ours, "on_user_turn_exceeded") == []


def test_d17_empty_commit_leaves_no_authority() -> None:
    """D17: after an empty commit the reference ends an stt-mode turn without the STT's end."""
    ref, ours = both("extra/x40_stt_commit_empty_leaves_authority")
    assert [x["t"] for x in kinds(ref, "on_end_of_turn")] == [2.95]
    assert [x["t"] for x in kinds(ours, "on_end_of_turn")] == [4.0]


def test_d18_commit_does_not_consult_the_model() -> None:
    """D18: the reference asks the end-of-turn model after an explicit commit; turnfsm does not."""
    ref, ours = both("extra/x08_model_language_null_commit_promoted_interim")
    assert any(x.get("method") == "predict_end_of_turn" for x in kinds(ref, "turn_detector"))
    assert not any(x.get("method") == "predict_end_of_turn"
                   for x in kinds(ours, "turn_detector"))
