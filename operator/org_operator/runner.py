"""Run the operator: build the controller and hand its registry to kopf."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from typing import Any

import kopf
import prometheus_client

from .handlers.wiring import build_registry
from .kube import USER_AGENT, Kube
from .metrics import register_token_health
from .runtime.controller import Controller
from .settings import OperatorSettings


def build(
    settings: OperatorSettings,
    tune: Callable[[kopf.OperatorSettings], None] | None = None,
    identity_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    namespaces: Collection[str] = (),
) -> tuple[Controller, kopf.OperatorRegistry]:
    """The controller and its kopf registry; ``identity_hooks`` are httpx event hooks on Authentik calls."""
    user_agent = f"{USER_AGENT}/{settings.instance}"  # tells the replicas apart in the apiserver's audit log
    controller = Controller(settings, lambda: Kube.from_config(user_agent=user_agent), identity_hooks, namespaces)
    return controller, build_registry(controller, tune)


async def run_operator(
    settings: OperatorSettings,
    *,
    namespaces: Collection[str] = (),
    clusterwide: bool = False,
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    tune: Callable[[kopf.OperatorSettings], None] | None = None,
    metrics_port: int | None = None,
) -> None:
    controller, registry = build(settings, tune, namespaces=namespaces)
    if metrics_port is not None:
        register_token_health(controller.state, prometheus_client.REGISTRY)
        prometheus_client.start_http_server(metrics_port)
    await kopf.operator(
        registry=registry,
        namespaces=namespaces,
        clusterwide=clusterwide or not namespaces,
        standalone=True,  # kopf only watches; the controller's Lease decides who acts (runtime/leader.py)
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
