"""What the operator benchmarks share: the emulated API in a process of its own, the real operator here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import kopf

from org_operator.api import constants
from org_operator.emulators.kubernetes import write_kubeconfig
from org_operator.runner import build
from org_operator.runtime.controller import Controller
from org_operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "bench"
ORG = f"/apis/{constants.GROUP}/{constants.VERSION}/namespaces/{NAMESPACE}"


@contextlib.asynccontextmanager
async def emulated_cluster() -> AsyncIterator[str]:
    """The Kubernetes emulator on the other core, with an Enterprise namespace; ``$KUBECONFIG`` points at it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "org_operator.emulators.kubernetes", "--port", "0", "--crds", str(ROOT / "crds"),
         "--namespace", f"{NAMESPACE}:{constants.PLAN_LABEL}={constants.PLAN_ENTERPRISE}",
         "--history-limit", "200000"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as scratch:
            os.environ["KUBECONFIG"] = str(write_kubeconfig(Path(scratch) / "kubeconfig", url))
            yield url
    finally:
        process.terminate()
        process.wait()


@contextlib.asynccontextmanager
async def running_operator(settings: OperatorSettings | None = None, **build_options: Any) -> AsyncIterator[Controller]:
    """The real operator in this event loop, as `org-operator run -A --standalone` runs it."""
    controller, registry = build(settings or OperatorSettings(),
                                 tune=lambda s: setattr(s.scanning, "disabled", True), **build_options)
    stop = asyncio.Event()
    operator = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True,
                                                 stop_flag=stop))
    try:
        yield controller
    finally:
        stop.set()
        await operator


def body(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": constants.API_VERSION, "kind": kind, "metadata": {"name": name}, "spec": spec}
