"""Generate a long, realistic session as a trace (the conformance trace format).

    python benchmarks/gen_session.py --minutes 60 -o /tmp/s60.jsonl [--seed 1]

The user and the agent take turns: user utterances of 0.6-4 s with VAD start/end, a VAD
inference window every 32 ms throughout, an interim every 0.4 s and a final per
utterance, sometimes a pause inside a turn (a second utterance before the end of turn);
agent replies of 1-6 s; now and then the user barges in (an overlap verdict with the
interruption detector on) or says a short backchannel over the agent. Seeded: the same
arguments give the same file.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterator
from typing import Any, TextIO

_TEXT = ("book a table for two tonight please near the station at seven thirty can you "
         "check the weather tomorrow morning and send a message to my sister saying I will "
         "be late")
WORDS = _TEXT.split()


def _line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":")) + "\n"


def session(minutes: float, seed: int = 1, *, detector: bool = False) -> Iterator[str]:
    """The trace's lines: events of each exchange, merged in time order with a VAD
    inference window every 32 ms, all the time (speech or not), as a VAD stream gives them."""
    rnd = random.Random(seed)
    yield _line({"kind": "config", "comment": f"generated session, {minutes} min, seed {seed}",
                 "interruption_detection": detector, "backchannel_boundary": [1.0, 1.0]})
    yield _line({"t": 0.0, "kind": "audio", "duration": 0.02})
    end = minutes * 60.0
    t = 0.5
    window = 0.032
    next_window = window
    rid = 0
    while t < end:
        rid += 1
        events: list[tuple[float, int, dict[str, Any]]] = []
        speech: list[tuple[float, float]] = []  # user speech spans (for the windows)

        def add(when: float, obj: dict[str, Any], events: list[Any] = events) -> None:
            events.append((round(when, 3), len(events), obj))

        for part in range(1 if rnd.random() < 0.8 else 2):  # one or two utterances
            length = rnd.uniform(0.6, 4.0)
            s0 = t + 0.2
            speech.append((s0 - 0.2, s0 + length))
            add(s0, {"kind": "vad.start_of_speech", "speech_duration": 0.2,
                     "inference_duration": 0.01})
            words: list[str] = []
            w = 0.4
            while w < length:
                words.append(rnd.choice(WORDS))
                add(s0 + w, {"kind": "stt.interim", "text": " ".join(words), "language": "en",
                             "confidence": 0.8, "request_id": f"r{rid}"})
                w += 0.4
            words.append(rnd.choice(WORDS))
            add(s0 + length + 0.12, {"kind": "stt.final", "text": " ".join(words),
                                     "language": "en", "confidence": 0.9,
                                     "request_id": f"r{rid}"})
            add(s0 + length + 0.3, {"kind": "vad.end_of_speech", "silence_duration": 0.3,
                                    "speech_duration": round(length, 3)})
            t = s0 + length + (0.35 if part == 0 else 0.3)
        t += rnd.uniform(1.0, 1.6)  # the agent answers after the end of turn
        a_start, a_len = t, rnd.uniform(1.0, 6.0)
        add(a_start, {"kind": "agent.speech_started"})
        r = rnd.random()
        if r < 0.1 and a_len > 2.0:  # a backchannel over the agent
            bt = a_start + a_len / 2
            speech.append((bt - 0.1, bt + 0.3))
            add(bt, {"kind": "vad.start_of_speech", "speech_duration": 0.1,
                     "inference_duration": 0.01})
            add(bt + 0.3, {"kind": "stt.final", "text": "uh huh", "language": "en",
                           "confidence": 0.7})
            add(bt + 0.35, {"kind": "overlap", "is_interruption": False, "probability": 0.2})
            add(bt + 0.4, {"kind": "vad.end_of_speech", "silence_duration": 0.1})
            add(a_start + a_len, {"kind": "agent.speech_ended"})
            t = a_start + a_len + rnd.uniform(0.3, 1.5)
        elif r < 0.15 and a_len > 2.0:  # a barge-in: the agent stops (interruption feedback)
            bt = a_start + a_len / 2
            add(bt, {"kind": "vad.start_of_speech", "speech_duration": 0.2,
                     "inference_duration": 0.01})
            add(bt + 0.3, {"kind": "overlap", "is_interruption": True, "probability": 0.9})
            speech.append((bt - 0.2, bt + 0.6))
            add(bt + 0.6, {"kind": "vad.end_of_speech", "silence_duration": 0.3})
            t = bt + 1.0
        else:
            add(a_start + a_len, {"kind": "agent.speech_ended"})
            t = a_start + a_len + rnd.uniform(0.3, 1.5)
        # VAD windows up to the end of this exchange, in time order with its events
        while next_window < t:
            acc = 0.0
            for a, b in speech:
                if a <= next_window <= b:
                    acc = next_window - a
            events.append((round(next_window, 3), -1, {
                "kind": "vad.inference_done", "raw_accumulated_speech": round(acc, 3),
                "probability": 0.9 if acc else 0.05, "speaking": bool(acc)}))
            next_window += window
        for when, _order, obj in sorted(events, key=lambda e: (e[0], e[1])):
            yield _line({"t": when, **obj})


def write(minutes: float, out: TextIO, seed: int = 1, *, detector: bool = False) -> int:
    """Write a session; return the number of input lines."""
    n = -1
    for line in session(minutes, seed, detector=detector):
        out.write(line)
        n += 1
    return n


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--detector", action="store_true",
                    help="interruption detection on (turnfsm then deviates from the reference "
                         "where it fixes the detector marker defects D10/D11)")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    with open(a.output, "w", encoding="utf-8") as f:
        n = write(a.minutes, f, a.seed, detector=a.detector)
    print(f"{a.output}: {n} inputs, {a.minutes} min")
