"""Join labelled corpus dialogues into one longer session, as if one user had them all.

    python scripts/concat_sessions.py OUT en13_preposition_fly en18_filler_um en01_list_eggs

writes OUT.wav (stereo, 16 kHz, the dialogues one after the other), OUT.words.json and
OUT.truth.json (every time shifted by the dialogues before it; kinds joined), which
`turnfsm score` reads as it reads the corpus. The default profile's session pauses
(`pause_memory`) act only once a session has heard mid-turn pauses, and every corpus
dialogue has a single user turn: joined, later turns hear the earlier ones' pauses.
"""

from __future__ import annotations

import json
import sys
import wave
from pathlib import Path
from typing import Any

import numpy as np

CORPUS = Path(__file__).resolve().parents[1] / "examples" / "corpus"
SHIFTED = ("start", "end", "intended_end", "interrupted_at")


def _shift(x: float, by: float) -> float:
    return round(x + by, 6)


def join(out: Path, stems: list[str], corpus: Path = CORPUS) -> None:
    """Write ``out``.wav/.words.json/.truth.json from the corpus dialogues ``stems``."""
    pcm: list[np.ndarray] = []
    words: list[dict[str, Any]] = []
    truth: dict[str, Any] = {
        "sample_rate": 16000, "channels": ["user", "agent"],
        "speech": {"user": [], "agent": []}, "turns": [], "agent_turns": [],
        "backchannels": [], "interruptions": [], "events": [], "kind": [],
        "description": "joined: " + " ".join(stems)}
    t0 = 0.0
    languages, syntheses = set(), set()
    for stem in stems:
        with wave.open(str(corpus / f"{stem}.wav")) as w:
            if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (2, 2, 16000):
                raise SystemExit(f"{stem}.wav: not a 16 kHz 16-bit stereo corpus file")
            a = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).reshape(-1, 2)
        tr = json.loads((corpus / f"{stem}.truth.json").read_text(encoding="utf-8"))
        wd = json.loads((corpus / f"{stem}.words.json").read_text(encoding="utf-8"))
        languages.add(tr.get("language"))
        syntheses.add(tr.get("synthesis"))
        words += [{**x, "start": _shift(x["start"], t0), "end": _shift(x["end"], t0)}
                  for x in wd["words"]]
        for ch in ("user", "agent"):
            truth["speech"][ch] += [[_shift(s, t0), _shift(e, t0)]
                                    for s, e in tr["speech"][ch]]
        for key in ("turns", "agent_turns", "backchannels", "interruptions", "events"):
            for x in tr.get(key) or []:
                y = {k: (_shift(v, t0) if k in SHIFTED and v is not None else v)
                     for k, v in x.items()}
                if "pauses" in y:
                    y["pauses"] = [[_shift(p, t0), _shift(q, t0)] for p, q in y["pauses"]]
                truth[key].append(y)
        truth["kind"] += [k for k in tr.get("kind", []) if k not in truth["kind"]]
        pcm.append(a)
        t0 += a.shape[0] / 16000
    truth["duration"] = round(t0, 6)
    if len(languages) == 1:
        truth["language"] = languages.pop()
    if len(syntheses) == 1:
        truth["synthesis"] = syntheses.pop()
    with wave.open(str(out.with_suffix(".wav")), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(np.concatenate(pcm).tobytes())
    lang = truth.get("language")
    Path(f"{out}.truth.json").write_text(json.dumps(truth, indent=1), encoding="utf-8")
    Path(f"{out}.words.json").write_text(json.dumps({"language": lang, "words": words}),
                                         encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    join(Path(sys.argv[1]), sys.argv[2:])
