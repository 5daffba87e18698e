"""The ``org-operator`` command line: run, demo, and the admin helpers."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import UTC, datetime

import click
from pydantic import ValidationError

from .api import constants
from .decisions.managed_users import FORCE
from .kube import VERIFIER_USER_AGENT, Kube, NotFound, path
from .settings import OperatorSettings
from .users_table import UserRow, as_json, build_rows, render_table


def _settings() -> OperatorSettings:
    """Settings from the environment; a bad value ends the process with one line saying what to fix."""
    try:
        return OperatorSettings()
    except ValidationError as error:
        problem = error.errors()[0]
        message = str(problem["msg"]).removeprefix("Value error, ")
        if problem["loc"]:
            message = "ORG_OPERATOR_" + "_".join(str(part) for part in problem["loc"]).upper() + ": " + message
        raise click.ClickException(message) from None


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines carry emails in query strings


@click.group()
def main() -> None:
    """Declarative organization users: service accounts, managed users and API tokens."""


@main.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve only these namespaces (repeatable).")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve all namespaces (the default).")
@click.option("--standalone", is_flag=True,
              help="No leader election: act at once, without the Lease. Only ever with a single replica.")
@click.option("--liveness", "liveness_endpoint", default=None, help="e.g. http://0.0.0.0:8081/healthz")
@click.option("--metrics-port", type=int, default=None, help="Serve Prometheus metrics on this port.")
@click.option("-v", "--verbose", is_flag=True)
def run(
    namespaces: tuple[str, ...],
    clusterwide: bool,
    standalone: bool,
    liveness_endpoint: str | None,
    metrics_port: int | None,
    verbose: bool,
) -> None:
    """Run the operator against the current kubeconfig or the in-cluster config."""
    from .runner import run_operator

    if namespaces and clusterwide:
        raise click.UsageError("use either -n/--namespace or -A/--all-namespaces")
    settings = _settings()
    if standalone:
        settings.leader_election = False
    _logging(verbose)
    asyncio.run(
        run_operator(
            settings,
            namespaces=namespaces,
            clusterwide=clusterwide,
            liveness_endpoint=liveness_endpoint,
            metrics_port=metrics_port,
        )
    )


@main.command()
def demo() -> None:
    """Run the operator and verifier against emulated Kubernetes and Authentik, and show what happens."""
    from .demo import main as run_demo

    run_demo()


@main.command()
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Serve only these namespaces (repeatable).")
@click.option("-A", "--all-namespaces", "clusterwide", is_flag=True, help="Serve all namespaces (the default).")
@click.option("--port", type=int, default=8080, show_default=True, help="/auth, /healthz, /readyz.")
@click.option("--introspection-port", type=int, help="Serve /introspect on this port only (default: --port).")
@click.option("--metrics-port", type=int, help="Serve /metrics on this port only (default: --port).")
@click.option("-v", "--verbose", is_flag=True)
def verifier(
    namespaces: tuple[str, ...],
    clusterwide: bool,
    port: int,
    introspection_port: int | None,
    metrics_port: int | None,
    verbose: bool,
) -> None:
    """Run the token verifier: forward-auth at /auth, introspection at /introspect, /metrics."""
    from .verifier import VerifierConfig, run_verifier

    if namespaces and clusterwide:
        raise click.UsageError("use either -n/--namespace or -A/--all-namespaces")
    try:
        config = VerifierConfig.from_env(
            port=port, introspection_port=introspection_port, metrics_port=metrics_port, namespaces=namespaces
        )
    except (ValidationError, ValueError, OSError) as error:
        raise click.ClickException(str(error)) from None
    _logging(verbose)
    asyncio.run(run_verifier(config, Kube.from_config(user_agent=VERIFIER_USER_AGENT)))


async def _fetch_users(namespace: str) -> list[UserRow]:
    async with Kube.from_config() as kube:
        lists = [await kube.list(path(plural, namespace)) for plural in
                 (constants.SERVICE_ACCOUNTS, constants.MANAGED_USERS, constants.API_TOKENS)]
    return build_rows(*(listing.get("items", []) for listing in lists))


@main.command()
@click.option("-n", "--namespace", required=True, help="The organization's namespace.")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def users(namespace: str, output: str) -> None:
    """Print the Organization Users table: service accounts and managed users, with their tokens."""
    rows = asyncio.run(_fetch_users(namespace))
    click.echo(json.dumps(as_json(rows), indent=2) if output == "json" else render_table(rows))


async def _request_reset(namespace: str, name: str, stamp: str) -> None:
    annotations = {constants.PASSWORD_RESET_ANNOTATION: stamp}
    async with Kube.from_config() as kube:
        await kube.patch(path(constants.MANAGED_USERS, namespace, name), {"metadata": {"annotations": annotations}})


@main.command("reset-password")
@click.argument("name")
@click.option("-n", "--namespace", required=True, help="The organization's namespace.")
@click.option("--force", is_flag=True,
              help="First make the current password unusable and end all the user's sessions in Authentik.")
def reset_password(name: str, namespace: str, force: bool) -> None:
    """Send a managed user the password-reset email again (records a request on the object).

    With --force, a forced password rotation: the operator replaces the password with one nobody knows,
    ends every session, then sends the email, once for this request.
    """
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    value = f"{FORCE}:{stamp}" if force else stamp
    try:
        asyncio.run(_request_reset(namespace, name, value))
    except NotFound:
        raise click.ClickException(f"OrgManagedUser {name} not found in namespace {namespace}") from None
    if force:
        click.echo(f"Forced password rotation requested for {namespace}/{name} ({value}); the operator makes the "
                   "current password unusable, ends all sessions, then sends the email.")
    else:
        click.echo(f"Password reset requested for {namespace}/{name} at {stamp}; the operator sends the email.")


if __name__ == "__main__":
    main()
