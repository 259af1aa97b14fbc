"""The sweep on a Dask distributed cluster (``turnfsm tune --cluster tls://HOST:8786``).

**Trust.** Dask moves pickled Python objects between the client, the scheduler and the
workers: whoever can talk to the scheduler can run code on every worker (and send the
client results it unpickles). Over ``tls://`` (:func:`security`: this client's certificate,
and the authority every certificate of the cluster must be signed by) only holders of a
certificate from that authority get in, and the traffic is encrypted. A ``tcp://`` cluster
trusts everyone who can reach its ports: use it only on a private network or a loopback
address (the command warns otherwise). docs/tuning.md says how to set a cluster up.

The same tasks as on a process pool (:func:`~turnfsm.tuning.sweep.plan`, one per worker
thread counted), submitted to the cluster:

* the settings are scattered once and copied to every worker (``broadcast``): a task names
  its settings by index;
* a task names its sessions by path (the workers read them from storage they share with
  the client, under the same paths); when a session's settings are split over several
  tasks, the session is prepared by one task first and the chunk tasks depend on it: Dask
  copies the prepared session (the VAD's probabilities, the words and labels: a few tens of
  kB) to each worker that runs one of its chunks, once per worker;
* each task sends back one tally per setting of its chunk (counts and a histogram of the
  latencies), merged on the client as they arrive.
"""

from __future__ import annotations

import ipaddress
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..errors import TurnFsmError
from .grid import Grid
from .plan import Progress, SweepResult, finish, merge, plan
from .sessions import prepare, run_task
from .tally import Tally

INSTALL = ("--cluster needs Dask's distributed scheduler: pip install 'dask[distributed]' "
           "(on the client and on every worker, with this version of turnfsm)")


def security(ca_file: str, cert: str, key: str | None = None) -> Any:
    """A ``distributed.Security`` for a TLS cluster: the client presents ``cert`` (with
    ``key``, unless the certificate file holds it) and accepts only peers whose certificate
    ``ca_file``'s authority signed; encryption is required."""
    try:
        from distributed.security import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            Security,
        )
    except ImportError:
        raise TurnFsmError(INSTALL) from None
    for what, path in (("--tls-ca-file", ca_file), ("--tls-cert", cert), ("--tls-key", key)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise TurnFsmError(f"{what} {path}: {e.strerror or e}") from None
    return Security(  # type: ignore[no-untyped-call, unused-ignore]
        tls_ca_file=ca_file, tls_client_cert=cert, tls_client_key=key,
        require_encryption=True)


def _local(address: str) -> bool:
    host = urlsplit(address).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client(cluster: str | Any, sec: Any = None) -> tuple[Any, bool]:
    """A ``distributed.Client`` (and whether it was made here, to be closed here)."""
    try:
        import distributed  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError:
        raise TurnFsmError(INSTALL) from None
    if isinstance(cluster, distributed.Client):
        return cluster, False
    if not isinstance(cluster, str):
        raise TurnFsmError(f"--cluster must be an address, not {cluster!r}")
    if isinstance(sec, dict):
        sec = security(sec["ca_file"], sec["cert"], sec.get("key"))
    if cluster.startswith("tls://") and sec is None:
        raise TurnFsmError("--cluster tls://... needs --tls-ca-file and --tls-cert")
    if not cluster.startswith("tls://") and not _local(cluster):
        print(f"turnfsm tune: warning: {cluster} is not encrypted and not authenticated: "
              "anyone who can reach the scheduler can run code on every worker; use "
              "tls:// (docs/tuning.md)", file=sys.stderr)
    try:
        client = distributed.Client(  # type: ignore[no-untyped-call, unused-ignore]
            cluster, set_as_default=False, timeout="20s", security=sec)
        return client, True
    except (OSError, TimeoutError) as e:
        raise TurnFsmError(f"cannot reach the Dask scheduler at {cluster}: {e}") from None
    except ValueError as e:  # a malformed address, a TLS file Dask refuses
        raise TurnFsmError(f"--cluster {cluster}: {e}") from None


def sweep_dask(grid: Grid, paths: Sequence[str], cluster: str | Any, *,
               progress: Progress | None = None, security: Any = None) -> SweepResult:
    """The sweep on a Dask cluster (an address, or a ``distributed.Client``); ``security``:
    a ``distributed.Security`` or the TLS files as a mapping (``ca_file``, ``cert``,
    ``key``) for a ``tls://`` address."""
    start = time.perf_counter()
    client, own = _client(cluster, security)
    try:
        from distributed import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
            as_completed,
        )
        threads = sum(client.nthreads().values()) or 1
        address = client.scheduler.address
        p = plan(len(paths), grid.settings, threads)
        run = uuid.uuid4().hex[:12]
        [settings] = client.scatter([grid.settings], broadcast=True, hash=False)
        prepared: dict[int, Any] = {}
        if p.split:
            for i in sorted({i for t in p.tasks for i in t.sessions}):
                prepared[i] = client.submit(prepare, str(paths[i]), pure=False,
                                            key=f"turnfsm-prepare-{run}-{i}")
        futures: dict[Any, Any] = {}
        for k, task in enumerate(p.tasks):
            srcs = [prepared[i] if p.split else str(paths[i]) for i in task.sessions]
            f = client.submit(run_task, srcs, task.settings, settings, pure=False,
                              key=f"turnfsm-tune-{run}-{k}")
            futures[f] = task
        prepared.clear()  # the scheduler keeps each until its chunks are done
        results: list[Tally | None] = [None] * len(grid.settings)
        done, total = 0, len(paths) * len(grid.settings)
        for f in as_completed(list(futures), loop=client.loop):  # type: ignore[no-untyped-call, unused-ignore]
            task = futures.pop(f)
            merge(results, task, f.result())
            done += len(task.sessions) * len(task.settings)
            if progress is not None:
                progress(done, total, "")
        return finish(grid, paths, results, start, f"dask ({address}, {threads} threads)")
    finally:
        if own:
            client.close()
