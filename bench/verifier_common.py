"""Shared by the verifier benchmarks: an emulated cluster seeded as the operator leaves it, and the real
verifier started through its CLI (``org-operator verifier``) in a process of its own.

The emulator runs on a thread of the benchmark process. Objects are seeded on its loop (created as
kubectl would, then given the status the operator writes when it issues a token), because creating
100,000 objects over HTTP would only measure the emulator; the verifier then reads them the normal
way, through a paginated list and a watch over HTTP.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from org_operator import tokens
from org_operator.api import constants
from org_operator.emulators.kubernetes import EmulatorThread, KubernetesEmulator, write_kubeconfig

ROOT = Path(__file__).resolve().parents[1]
CRDS = sorted((ROOT / "crds").glob("org*.yaml"))
NAMESPACE = "bench"
TOKENS_PER_ACCOUNT = 100
MERGE_PATCH = "application/merge-patch+json"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def emulator() -> EmulatorThread:
    """The emulated API server; history large enough that seeding never expires the verifier's watch."""
    return EmulatorThread(crds=CRDS, namespaces=[NAMESPACE], history_limit=300_000)


def account_name(index: int) -> str:
    return f"client-{index // TOKENS_PER_ACCOUNT:05d}"


def seed(api: EmulatorThread, start: int, count: int) -> list[str]:
    """Tokens ``start``..``start+count`` (and their service accounts); returns their plaintexts."""
    issued = [tokens.generate() for _ in range(count)]
    api.call(_seed_on_loop, api.emulator, start, issued)
    # The seeded objects live until the run ends. Out of the cyclic collector's sight, its full
    # collections no longer walk them (they made each page of a 100,000-object list 4 times slower).
    gc.freeze()
    return [token.plaintext for token in issued]


def seeded_sizes(api: EmulatorThread, sizes: Iterable[int], tokens_file: Path) -> Iterator[int]:
    """Each size in turn, once the emulator holds that many tokens (added to, never replaced) and
    ``tokens_file`` lists their plaintexts, one per line, for the load generator."""
    plaintexts: list[str] = []
    for size in sizes:
        plaintexts += seed(api, len(plaintexts), size - len(plaintexts))
        tokens_file.write_text("\n".join(plaintexts) + "\n")
        yield size


def _seed_on_loop(api: KubernetesEmulator, start: int, issued: list[tokens.IssuedToken]) -> None:
    token_type = api.cluster.resource(constants.GROUP, constants.VERSION, constants.API_TOKENS)
    for offset, token in enumerate(issued):
        index = start + offset
        if index % TOKENS_PER_ACCOUNT == 0:
            api.seed(
                _body(
                    "OrgServiceAccount",
                    account_name(index),
                    {"email": f"{account_name(index)}@bench.example"},
                )
            )
        name = f"token-{index:06d}"
        api.seed(_body("OrgApiToken", name, {"serviceAccountName": account_name(index), "expiry": "Never"}))
        status = {"phase": "Active", "tokenHash": token.hash, "tokenId": token.token_id, "issuedAt": _now()}
        api.cluster.patch(token_type, NAMESPACE, name, {"status": status}, MERGE_PATCH, "status")


def _body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": constants.API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class VerifierProcess:
    process: subprocess.Popen[bytes]
    url: str
    ready_seconds: float

    @property
    def pid(self) -> int:
        return self.process.pid


@contextlib.contextmanager
def verifier(api_url: str, *, ready_timeout: float = 300.0, **env: str) -> Iterator[VerifierProcess]:
    """``org-operator verifier`` against the emulator; yields once /readyz answers 200."""
    port = free_port()
    with tempfile.TemporaryDirectory() as scratch:
        kubeconfig = write_kubeconfig(Path(scratch) / "kubeconfig", api_url)
        command = [_cli(), "verifier", "--all-namespaces", "--port", str(port)]
        started = time.monotonic()
        process = subprocess.Popen(
            command, env={**os.environ, "KUBECONFIG": str(kubeconfig), **env}, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _until_ready(url, process, started + ready_timeout)
            yield VerifierProcess(process, url, time.monotonic() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _cli() -> str:
    found = shutil.which("org-operator", path=str(Path(sys.executable).parent)) or shutil.which(
        "org-operator"
    )
    if found is None:
        raise SystemExit("org-operator is not installed: pip install -e .")
    return found


def _until_ready(url: str, process: subprocess.Popen[bytes], deadline: float) -> None:
    with httpx.Client(base_url=url, timeout=2.0) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"the verifier exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get("/readyz").status_code == 200:
                    return
            time.sleep(0.05)
    raise SystemExit("the verifier did not get ready in time")


def memory_mb(pid: int) -> dict[str, float]:
    """Resident set now and at its peak (VmHWM), from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return {
        name: round(int(fields[key].split()[0]) / 1024, 1)
        for name, key in (("rss", "VmRSS"), ("peak", "VmHWM"))
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pin(pid: int, cpus: set[int]) -> None:
    """Restrict every thread of a process to ``cpus`` (threads started later inherit it)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), cpus)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]
