"""`turnfsm tune --cluster tls://...`: a Dask cluster over TLS with certificates made here
(a throw-away authority, on 127.0.0.1 only), and the refusals around it. The tests that
start a cluster are slow-marked (CI runs them)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from turnfsm.cli import main

ROOT = Path(__file__).resolve().parents[1]
TRACE = str(ROOT / "examples" / "audio" / "hesitation.wav")  # a labelled session


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path, name: str = "ca") -> dict[str, str]:
    """A certificate authority and one certificate it signed for 127.0.0.1 (used by the
    scheduler, the worker and the client alike)."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
             "-out", f"{name}.pem", "-days", "1", "-subj", f"/CN=turnfsm test {name}", cwd=d)
    (d / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "node.key", "-out",
             "node.csr", "-subj", "/CN=127.0.0.1", cwd=d)
    _openssl("x509", "-req", "-in", "node.csr", "-CA", f"{name}.pem", "-CAkey", f"{name}.key",
             "-CAcreateserial", "-out", "node.pem", "-days", "1", "-extfile", "ext.cnf", cwd=d)
    return {"ca": str(d / f"{name}.pem"), "cert": str(d / "node.pem"), "key": str(d / "node.key")}


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A one-worker Dask cluster on tls://127.0.0.1 requiring certificates of its CA."""
    distributed = pytest.importorskip("distributed")
    from distributed.security import Security
    certs = make_certs(tmp_path_factory.mktemp("tls"))
    sec = Security(tls_ca_file=certs["ca"], tls_scheduler_cert=certs["cert"],
                   tls_scheduler_key=certs["key"], tls_worker_cert=certs["cert"],
                   tls_worker_key=certs["key"], tls_client_cert=certs["cert"],
                   tls_client_key=certs["key"], require_encryption=True)
    with distributed.LocalCluster(protocol="tls://", host="127.0.0.1", security=sec,
                                  n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        yield cluster.scheduler_address, certs


def _grid(tmp_path: Path) -> str:
    g = tmp_path / "grid.yaml"
    g.write_text("min_delay: [0.4, 0.6]\n")
    return str(g)


@pytest.mark.slow  # a cluster start and certificates: a few seconds
def test_tune_on_a_tls_cluster_equals_the_serial_run(tls_cluster: Any, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    """--cluster tls://127.0.0.1:PORT with the client's certificate runs the sweep and
    prints what the serial run prints."""
    address, certs = tls_cluster
    assert address.startswith("tls://127.0.0.1:")
    grid = _grid(tmp_path)
    assert main(["tune", TRACE, "--grid", grid, "-q", "--jobs", "1"]) == 0
    serial = capsys.readouterr().out
    assert main(["tune", TRACE, "--grid", grid, "-q", "--cluster", address,
                 "--tls-ca-file", certs["ca"], "--tls-cert", certs["cert"],
                 "--tls-key", certs["key"]]) == 0
    captured = capsys.readouterr()
    assert f"dask ({address}" in captured.out and "warning" not in captured.err
    assert captured.out.split("Pareto front")[1] == serial.split("Pareto front")[1]


@pytest.mark.slow  # a cluster start and certificates: a few seconds
def test_a_tls_cluster_without_certificates_is_refused(tls_cluster: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """tls:// without --tls-ca-file/--tls-cert: exit 2 naming what is missing, nothing
    sent."""
    address, _certs = tls_cluster
    assert main(["tune", TRACE, "--grid", _grid(tmp_path), "--cluster", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs --tls-ca-file" in err


def test_tls_options_without_a_tls_address_are_refused(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """--tls-cert with a tcp:// (or no) cluster is a usage error, not silently ignored."""
    assert main(["tune", TRACE, "--grid", _grid(tmp_path), "--cluster", "tcp://127.0.0.1:1",
                 "--tls-ca-file", "a.pem", "--tls-cert", "b.pem"]) == 2
    assert "go with --cluster tls://" in capsys.readouterr().err


def test_a_missing_certificate_file_is_named(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """A certificate file that does not exist: one line naming the option and the file."""
    pytest.importorskip("distributed")
    missing = str(tmp_path / "nope.pem")
    assert main(["tune", TRACE, "--grid", _grid(tmp_path), "--cluster", "tls://127.0.0.1:1",
                 "--tls-ca-file", missing, "--tls-cert", missing]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--tls-ca-file {missing}" in err


def test_only_loopback_plain_tcp_goes_without_a_warning() -> None:
    """A tcp:// address is local only on a loopback host; anything else is warned about."""
    from turnfsm.tuning.cluster import _local
    assert _local("tcp://127.0.0.1:8786") and _local("tcp://localhost:8786")
    assert _local("tcp://[::1]:8786")
    assert not _local("tcp://10.0.0.5:8786") and not _local("tcp://scheduler.example:8786")


@pytest.mark.slow  # a cluster start and certificates: a few seconds
def test_a_client_certificate_from_another_authority_is_refused(
        tls_cluster: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A client whose certificate another authority signed does not get in: exit 2 with
    one line, no sweep."""
    address, _certs = tls_cluster
    other = make_certs(tmp_path / "other", "other")
    assert main(["tune", TRACE, "--grid", _grid(tmp_path), "--cluster", address,
                 "--tls-ca-file", other["ca"], "--tls-cert", other["cert"],
                 "--tls-key", other["key"]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the Dask scheduler" in err
