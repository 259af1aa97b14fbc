"""A built wheel carries the chart the code runs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `pip wheel .` builds from a copy of the checkout (built once per module)."""
    pytest.importorskip("hatchling")
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".venv", ".git", ".ci", "node_modules", "__pycache__", ".hypothesis", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path / "dist"), str(src)], check=True)
    (built,) = (tmp_path / "dist").glob("turnfsm-*.whl")
    return built


def test_wheel_contains_the_root_chart_and_examples(wheel: Path) -> None:
    """`pip wheel .` packs states.yaml and the profiles (identical to the root ones), the
    built-in rules' data, and the example session."""
    with zipfile.ZipFile(wheel) as z:
        assert z.read("turnfsm/states.yaml") == (ROOT / "states.yaml").read_bytes()
        assert z.read("turnfsm/profiles/default.yaml") == \
            (ROOT / "profiles" / "default.yaml").read_bytes()
        names = z.namelist()
        assert {"turnfsm/core/end_of_turn_words.json", "turnfsm/core/backchannels.json"} <= \
            set(names)
        assert "turnfsm/examples/session.jsonl" in z.namelist()
        assert "turnfsm/py.typed" in z.namelist()


def test_installed_wheel_reads_its_package_data(wheel: Path, tmp_path: Path) -> None:
    """Installed from the wheel (its files unpacked as pip lays them out), turnfsm finds its
    chart, profiles and word lists beside its modules (no ``importlib.resources``)."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    code = ("import sys; from turnfsm.cli import main; main(['check']); "
            "from turnfsm.core import eou; from turnfsm.core.profiles import get_profile; "
            "p = get_profile('default'); print(p.source); print(eou.__file__, len(eou.WORDS)); "
            "print('importlib.resources' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env={"PYTHONPATH": str(site)}, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    check, profile, words, resources = r.stdout.splitlines()
    assert check.startswith(f"{site / 'turnfsm' / 'states.yaml'}: ok (")
    assert profile == str(site / "turnfsm" / "profiles" / "default.yaml")
    assert words.startswith(str(site / "turnfsm" / "core" / "eou.py"))
    assert int(words.split()[1]) >= 6  # a word list per language
    assert resources == "False"
