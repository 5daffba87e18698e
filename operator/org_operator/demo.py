"""``org-operator demo``: the real operator and verifier against emulated Kubernetes and Authentik.

Everything runs on loopback: the Kubernetes API emulator and the Authentik emulator each in a
thread of their own, the operator (kopf) and the verifier in this process's event loop. The demo
applies ``examples/``, then shows the users table, the tokens and their Secrets, the recovery
emails, a verified request, a revocation and a deactivation.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click
import httpx
import kopf
import yaml

from .api import constants
from .kube import Kube, core_path, path
from .runner import build
from .settings import OperatorSettings
from .tokens import hash_token
from .users_table import build_rows, render_table
from .verifier import Verifier, VerifierConfig

SHIPPED = Path(__file__).resolve().parent / "data"  # a wheel carries crds/ and examples/ here (setup.py)
CHECKOUT = Path(__file__).resolve().parents[2]  # a source checkout or an editable install
DEMO_NAMESPACE = "acme"
PUBLIC_HOST = "auth.acme.example"


def demo_files(name: str, pattern: str = "*.yaml") -> Path:
    """The directory ``crds`` or ``examples`` as installed; a missing one is one clear error, never a hang."""
    for directory in (SHIPPED / name, CHECKOUT / name):
        if any(directory.glob(pattern)):
            return directory
    raise click.ClickException(
        f"the demo needs {name}/ ({pattern}), found neither in the package ({SHIPPED / name}) nor in a "
        f"checkout ({CHECKOUT / name}): reinstall org-operator from a wheel built by `pip wheel .`")


def _title(text: str) -> None:
    click.echo("\n" + click.style(text, bold=True))


def _collection(doc: dict[str, Any]) -> str | None:
    """The collection URL an example document is created in, or None for kinds the emulator lacks."""
    kind, namespace = doc.get("kind"), doc.get("metadata", {}).get("namespace")
    plurals = {constants.KIND_SERVICE_ACCOUNT: constants.SERVICE_ACCOUNTS,
               constants.KIND_MANAGED_USER: constants.MANAGED_USERS, constants.KIND_API_TOKEN: constants.API_TOKENS}
    if kind == "Namespace":
        return core_path("namespaces")
    if kind in plurals:
        return path(plurals[kind], namespace)
    return None


async def apply_examples(kube: Kube, directory: Path, skip: Callable[[dict[str, Any]], bool]) -> list[str]:
    applied = []
    for file in sorted(directory.glob("*.yaml")):
        for doc in yaml.safe_load_all(file.read_text()):
            if not doc or skip(doc):
                continue
            collection = _collection(doc)
            name = f"{doc['kind']} {doc['metadata'].get('namespace', '')}/{doc['metadata']['name']}".replace(" /", " ")
            if collection is None:
                click.echo(f"  skipped {name} ({file.name}): the emulator runs no workloads")
                continue
            await kube.create(collection, doc)
            applied.append(name)
            click.echo(f"  applied {name} ({file.name})")
    return applied


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise click.ClickException("the demo timed out waiting for the operator")
        await asyncio.sleep(0.2)


async def _items(kube: Kube, plural: str) -> list[dict[str, Any]]:
    return (await kube.list(path(plural, DEMO_NAMESPACE))).get("items", [])


async def _settled(kube: Kube) -> bool:
    tokens = await _items(kube, constants.API_TOKENS)
    users = await _items(kube, constants.MANAGED_USERS)
    return all((t.get("status") or {}).get("phase") not in (None, "Pending") for t in tokens) and all(
        (u.get("status") or {}).get("phase") not in (None, "Pending") for u in users)


async def _print_tokens(kube: Kube) -> None:
    secrets = {s["metadata"]["name"] for s in (await kube.list(core_path("secrets", DEMO_NAMESPACE)))["items"]}
    rows = [("TOKEN", "SERVICE ACCOUNT", "SCOPE", "STATUS", "TOKEN ID", "EXPIRES", "SECRET")]
    for token in await _items(kube, constants.API_TOKENS):
        status = token.get("status") or {}
        secret = status.get("secretName") or token["spec"].get("secretName") or token["metadata"]["name"]
        rows.append((token["metadata"]["name"], token["spec"]["serviceAccountName"], token["spec"]["scope"],
                     status.get("phase", "-"), status.get("tokenId", "-"), status.get("expiresAt") or "Never",
                     secret if secret in secrets else "(none)"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  " + "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


async def _print_users(kube: Kube) -> None:
    listings = [await _items(kube, plural) for plural in
                (constants.SERVICE_ACCOUNTS, constants.MANAGED_USERS, constants.API_TOKENS)]
    for line in render_table(build_rows(*listings)).splitlines():
        click.echo("  " + line)


async def _verify(http: httpx.AsyncClient, kube: Kube, secret_name: str, method: str = "GET") -> str:
    secret = await kube.get(core_path("secrets", DEMO_NAMESPACE, secret_name))
    if secret is None:
        return "no Secret"
    token = base64.b64decode(secret["data"][constants.SECRET_TOKEN_KEY]).decode()
    response = await http.get("/auth", headers={"Authorization": f"Bearer {token}", "X-Forwarded-Method": method})
    identity = {k: v for k, v in response.headers.items() if k.lower().startswith("x-org-")}
    return f"{response.status_code} {identity or response.headers.get('www-authenticate', '')}"


async def _scenario(kube: Kube, verifier_url: str, authentik: Any, examples: Path) -> None:
    _title("1. Applying examples/ (in file order, as kubectl apply -f examples/ would)")
    await apply_examples(kube, examples, skip=lambda doc: doc["metadata"]["name"] == "globex-production-2026-12")
    await _until(lambda: _settled(kube))
    _title("2. Organization Users (org-operator users -n acme)")
    await _print_users(kube)
    _title("3. API tokens and their Secrets (the plaintext lives only in the Secret)")
    await _print_tokens(kube)
    _title("4. Password-reset emails queued in Authentik")
    for mail in authentik.store.outbox():
        click.echo(f"  to {mail.email}: link on host {mail.host}")
    async with httpx.AsyncClient(base_url=verifier_url) as http:
        _title("5. A pipeline calls the API with its token (verifier forward-auth)")
        click.echo(f"  GET  with globex-production      -> {await _verify(http, kube, 'globex-production')}")
        click.echo(f"  POST with globex-production      -> {await _verify(http, kube, 'globex-production', 'POST')}")
        _title("6. Manual rotation: issue a second token, then revoke the first, keeping its record "
               "(spec.revoked: true)")
        rotation = next(yaml.safe_load_all((examples / "30-rotation.yaml").read_text()))
        await kube.create(path(constants.API_TOKENS, DEMO_NAMESPACE), rotation)
        await _until(lambda: _secret_exists(kube, "globex-production-2026-12"))
        secret = await kube.get(core_path("secrets", DEMO_NAMESPACE, "globex-production"))
        old_token = base64.b64decode(secret["data"]["token"]).decode() if secret else ""
        started = time.monotonic()
        await kube.patch(path(constants.API_TOKENS, DEMO_NAMESPACE, "globex-production"), {"spec": {"revoked": True}})
        while (await http.get("/auth", headers={"Authorization": f"Bearer {old_token}"})).status_code != 401:
            await asyncio.sleep(0.01)
        click.echo(f"  old token refused with 401 after {1000 * (time.monotonic() - started):.0f} ms")
        click.echo(f"  new token                        -> {await _verify(http, kube, 'globex-production-2026-12')}")
        await _until(lambda: _phase(kube, "globex-production", "Revoked"))
        await asyncio.sleep(1.5)  # the verifier writes last use once per window (1 s here)
        record = (await kube.get(path(constants.API_TOKENS, DEMO_NAMESPACE, "globex-production")) or {})["status"]
        click.echo(f"  record kept: token {record.get('tokenId')} revoked at {record.get('revokedAt')} "
                   f"({record.get('revocationReason')}), last used {record.get('lastUsedAt') or 'never'}")
        await _automatic_rotation(http, kube)
        _title("8. Deactivation: spec.active=false on client-initech revokes all its tokens")
        secret = await kube.get(core_path("secrets", DEMO_NAMESPACE, "initech-production"))
        initech = base64.b64decode(secret["data"]["token"]).decode() if secret else ""
        initech_account = path(constants.SERVICE_ACCOUNTS, DEMO_NAMESPACE, "client-initech")
        await kube.patch(initech_account, {"spec": {"active": False}})
        await _until(lambda: _phase(kube, "initech-production", "Revoked"))
        answer = await http.get("/auth", headers={"Authorization": f"Bearer {initech}"})
        click.echo(f"  initech token now                -> {answer.status_code}")
        await kube.patch(initech_account, {"spec": {"active": True}})
        await asyncio.sleep(1.5)
        answer = await http.get("/auth", headers={"Authorization": f"Bearer {initech}"})
        click.echo(f"  after reactivation, old token    -> {answer.status_code} (revoked tokens stay revoked)")
    _title("9. Final state")
    await _print_users(kube)
    click.echo("")
    await _print_tokens(kube)


async def _automatic_rotation(http: httpx.AsyncClient, kube: Kube) -> None:
    """Step 7: a rotation now, by annotation; both values verify until the overlap ends."""
    _title("7. Automatic rotation (spec.rotation): rotate now with "
           "kubectl annotate oat pipeline-bot-rotating org.alien.club/rotate=now")
    token_path = path(constants.API_TOKENS, DEMO_NAMESPACE, "pipeline-bot-rotating")
    secret_path = core_path("secrets", DEMO_NAMESPACE, "pipeline-bot-rotating-token")
    secret = await kube.get(secret_path)
    previous = base64.b64decode(secret["data"][constants.SECRET_TOKEN_KEY]).decode() if secret else ""
    await kube.patch(token_path, {"metadata": {"annotations": {constants.ROTATE_ANNOTATION: "now"}}})

    async def rotated() -> bool:
        token, secret = await kube.get(token_path), await kube.get(secret_path)
        status = (token or {}).get("status") or {}
        value = base64.b64decode((secret or {}).get("data", {}).get(constants.SECRET_TOKEN_KEY, "")).decode()
        return status.get("rotations") == 1 and bool(value) and hash_token(value) == status.get("tokenHash")

    await _until(rotated)
    status = ((await kube.get(token_path)) or {}).get("status") or {}
    click.echo(f"  same Secret, new value: token {status.get('previousTokenId')} -> {status.get('tokenId')}")
    await asyncio.sleep(1.5)  # the verifier's watch
    answer = await http.get("/auth", headers={"Authorization": f"Bearer {previous}"})
    click.echo(f"  previous value                   -> {answer.status_code} until {status.get('previousValidUntil')}")
    click.echo(f"  new value                        -> {await _verify(http, kube, 'pipeline-bot-rotating-token')}")


async def _secret_exists(kube: Kube, name: str) -> bool:
    return await kube.get(core_path("secrets", DEMO_NAMESPACE, name)) is not None


async def _phase(kube: Kube, token: str, phase: str) -> bool:
    body = await kube.get(path(constants.API_TOKENS, DEMO_NAMESPACE, token))
    return body is not None and (body.get("status") or {}).get("phase") == phase


async def run_demo() -> None:
    from .emulators.authentik import AuthentikEmulatorThread
    from .emulators.kubernetes import EmulatorThread

    crds, examples = demo_files("crds", "org*.yaml"), demo_files("examples")
    with tempfile.TemporaryDirectory() as scratch, \
            EmulatorThread(crds=sorted(crds.glob("org*.yaml"))) as api, \
            AuthentikEmulatorThread() as authentik:
        authentik.store.set_recovery_flow("default-recovery-flow", domain=PUBLIC_HOST)
        os.environ["KUBECONFIG"] = str(api.write_kubeconfig(Path(scratch) / "kubeconfig"))
        click.echo(f"Kubernetes API emulator: {api.url}   Authentik emulator: {authentik.url}")
        settings = OperatorSettings(
            authentik_url=authentik.url, authentik_token=authentik.token,  # type: ignore[arg-type]
            authentik_public_host=PUBLIC_HOST, account_status_delay=0.2,
        )
        stop, ready = asyncio.Event(), asyncio.Event()
        _, registry = build(settings, tune=lambda s: setattr(s.scanning, "disabled", True))
        operator = asyncio.create_task(kopf.operator(registry=registry, clusterwide=True, standalone=True,
                                                     stop_flag=stop, ready_flag=ready))
        kube = Kube.from_config()
        try:
            async with Verifier(VerifierConfig(port=0, host="127.0.0.1", last_used_window=1.0), kube) as verifier:
                await verifier.wait_ready()
                await _until_stopped(lambda: _scenario(kube, verifier.url, authentik, examples), operator, ready)
        finally:
            stop.set()  # kopf then waits up to 5 s for tasks it did not spawn to end: a demo does not
            done, _ = await asyncio.wait({operator}, timeout=1.0)
            if not done:
                operator.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await operator
            await kube.aclose()


async def _until_stopped(scenario: Callable[[], Awaitable[None]], operator: asyncio.Task[None],
                         ready: asyncio.Event) -> None:
    """Run the scenario once the operator is up; Ctrl-C or SIGTERM cuts it short at once.

    From then on our handlers replace kopf's own: kopf would stop only the operator, then give every
    task spawned since its start (the scenario, the verifier's) 5 s to finish by themselves.
    """
    await asyncio.wait({operator, asyncio.ensure_future(ready.wait())}, return_when=asyncio.FIRST_COMPLETED)
    story = asyncio.ensure_future(scenario())
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, story.cancel)
    await asyncio.wait({story, operator}, return_when=asyncio.FIRST_COMPLETED)
    if story.cancelled() or not story.done():
        story.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await story
        raise click.ClickException("stopped before the demo finished")
    story.result()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(run_demo())
