"""Run the operator: build the controller and hand its registry to kopf."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection

import kopf

from .handlers.wiring import build_registry
from .kube import Kube
from .runtime.controller import Controller
from .settings import OperatorSettings


def build(
    settings: OperatorSettings, tune: Callable[[kopf.OperatorSettings], None] | None = None
) -> tuple[Controller, kopf.OperatorRegistry]:
    controller = Controller(settings, Kube.from_config)
    return controller, build_registry(controller, tune)


async def run_operator(
    settings: OperatorSettings,
    *,
    namespaces: Collection[str] = (),
    clusterwide: bool = False,
    standalone: bool = False,
    priority: int = 0,
    liveness_endpoint: str | None = None,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    tune: Callable[[kopf.OperatorSettings], None] | None = None,
) -> None:
    _, registry = build(settings, tune)
    await kopf.operator(
        registry=registry,
        namespaces=namespaces,
        clusterwide=clusterwide or not namespaces,
        standalone=standalone,
        priority=priority,
        liveness_endpoint=liveness_endpoint,
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )
