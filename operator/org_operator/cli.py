"""The ``org-operator`` command line: run, demo, and the admin helpers."""

from __future__ import annotations

import asyncio
import logging
import sys

import click
from pydantic import ValidationError

from .settings import OperatorSettings


def _settings() -> OperatorSettings:
    """Settings from the environment; a bad value ends the process with one line saying what to fix."""
    try:
        return OperatorSettings()
    except ValidationError as error:
        problem = error.errors()[0]
        field = "ORG_OPERATOR_" + "_".join(str(part) for part in problem["loc"]).upper()
        raise click.ClickException(f"{field}: {problem['msg']}") from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )


@click.group()
def main() -> None:
    """Declarative organization users: service accounts, managed users and API tokens."""


@main.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve only these namespaces (repeatable).")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve all namespaces (the default).")
@click.option("--standalone", is_flag=True, help="Do not coordinate with other replicas (no peering).")
@click.option("--priority", type=int, default=0, help="Peering priority; the highest running replica is active.")
@click.option("--liveness", "liveness_endpoint", default=None, help="e.g. http://0.0.0.0:8081/healthz")
@click.option("-v", "--verbose", is_flag=True)
def run(
    namespaces: tuple[str, ...],
    clusterwide: bool,
    standalone: bool,
    priority: int,
    liveness_endpoint: str | None,
    verbose: bool,
) -> None:
    """Run the operator against the current kubeconfig or the in-cluster config."""
    from .runner import run_operator

    if namespaces and clusterwide:
        raise click.UsageError("use either -n/--namespace or -A/--all-namespaces")
    settings = _settings()
    _logging(verbose)
    asyncio.run(
        run_operator(
            settings,
            namespaces=namespaces,
            clusterwide=clusterwide,
            standalone=standalone,
            priority=priority,
            liveness_endpoint=liveness_endpoint,
        )
    )


if __name__ == "__main__":
    main()
