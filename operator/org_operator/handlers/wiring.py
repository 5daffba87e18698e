"""kopf wiring: watch events update the read model and queue reconciles; nothing more.

Every handler here is an ``on.event`` handler, so kopf itself never writes to our objects (no
finalizers, no annotations, no progress in status): the only writes are the reconcilers' own,
which keeps the API writes per token at the Secret, the status and one Event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import kopf

from ..api import constants
from ..decisions.emails import normalise
from ..kube import kopf_connection, load_configuration
from ..runtime.controller import Controller
from . import api_tokens, managed_users, service_accounts

GROUP, VERSION = constants.GROUP, constants.VERSION
SA, MU, TOKENS = constants.SERVICE_ACCOUNTS, constants.MANAGED_USERS, constants.API_TOKENS


class RetryForever:
    """kopf's retry delays for a failing API request, never exhausted (a fresh iterator per request).

    kopf gives up on a watch after its default delays (1+1+2+...+21 = 54 s of 5xx or unreachable API)
    and its root task ends, taking the whole operator down: an apiserver upgrade or an etcd hiccup of a
    minute would then put the pod into CrashLoopBackOff, whose restarts back off up to 5 minutes. Like
    client-go's reflector, we keep retrying at ``cap`` instead; writes are fenced by the Lease anyway.
    """

    def __init__(self, first: Iterable[float] = (1, 1, 2, 3, 5, 8, 13), cap: float = 21) -> None:
        self.first = tuple(first)
        self.cap = cap

    def __iter__(self) -> Iterator[float]:
        yield from self.first
        while True:
            yield self.cap


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """kopf's own bookkeeping, should it ever write any, lives under our domain."""
    settings.persistence.finalizer = constants.KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=constants.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=constants.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # we post our own Events, deliberately and countably
    settings.peering.standalone = True  # who acts is decided by our Lease (runtime/leader.py), not kopf peering
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.networking.error_backoffs = RetryForever()


def build_registry(
    ctl: Controller, tune: Callable[[kopf.OperatorSettings], None] | None = None
) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        """In-cluster or kubeconfig credentials, the same ones our own client uses."""
        return kopf_connection(load_configuration())

    ctl.register(SA, service_accounts.reconcile)
    ctl.register(TOKENS, api_tokens.reconcile)
    ctl.register(MU, managed_users.reconcile)

    @kopf.on.startup(registry=registry)
    async def start(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
        configure_kopf(settings)
        if tune is not None:
            tune(settings)
        await ctl.start()

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await ctl.stop()

    ours = {constants.MANAGED_BY_LABEL: constants.MANAGED_BY}

    def requeue_email_claimants(namespace: str, spec: kopf.Spec) -> None:
        email = spec.get("email")
        if not email:
            return
        for claim in ctl.state.email_claims(namespace, normalise(email)):
            plural = SA if claim.kind == constants.KIND_SERVICE_ACCOUNT else MU
            ctl.enqueue(plural, (namespace, claim.name))

    def after_listing(type: str | None) -> None:
        """kopf re-lists after 410 Gone or a watch restart (events without a type) and sends no DELETED
        for what vanished meanwhile: re-list ourselves once its list is through, to forget it too."""
        if type is None and ctl.state.ready:
            ctl.relist_soon()

    def requeue_tokens_naming(namespace: str, name: str) -> None:
        for token in ctl.state.tokens_of(namespace, name):
            ctl.enqueue(TOKENS, token.meta.key)

    @kopf.on.event("v1", "namespaces", registry=registry)
    async def namespace_changed(name: str, body: kopf.Body, type: str | None, **_: Any) -> None:
        ctl.state.apply("namespaces", body, deleted=type == "DELETED")
        after_listing(type)
        for plural in (SA, MU, TOKENS):
            for key in ctl.state.keys_in_namespace(plural, name):
                ctl.enqueue(plural, key)

    @kopf.on.event(GROUP, VERSION, SA, registry=registry)
    async def service_account_changed(
        namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, type: str | None,
        body: kopf.Body, **_: Any
    ) -> None:
        before = ctl.state.service_account((namespace, name))
        ctl.state.apply(SA, body, deleted=type == "DELETED")
        after_listing(type)
        if type != "DELETED" and not meta.get("deletionTimestamp") and status.get("observedGeneration") == meta.get(
                "generation"):
            ctl.enqueue_quietly(SA, (namespace, name))  # the echo of our own status write: counts only
            if before is None or _token_gate(before.status) != _token_gate(status):
                # ... unless it shows a phase or lock epoch we had not seen: a write of ours that committed
                # though its answer was lost (a 500 after etcd, a dropped connection). The retry finds
                # nothing left to write, so this event is the only news for the tokens waiting on it.
                requeue_tokens_naming(namespace, name)
            return
        ctl.enqueue(SA, (namespace, name))
        requeue_tokens_naming(namespace, name)
        requeue_email_claimants(namespace, spec)

    @kopf.on.event(GROUP, VERSION, MU, registry=registry)
    async def managed_user_changed(
        namespace: str, name: str, spec: kopf.Spec, body: kopf.Body, type: str | None, **_: Any
    ) -> None:
        ctl.state.apply(MU, body, deleted=type == "DELETED")
        after_listing(type)
        ctl.enqueue(MU, (namespace, name))
        requeue_tokens_naming(namespace, name)
        requeue_email_claimants(namespace, spec)

    @kopf.on.event(GROUP, VERSION, TOKENS, registry=registry)
    async def token_changed(
        namespace: str, name: str, spec: kopf.Spec, body: kopf.Body, type: str | None, **_: Any
    ) -> None:
        ctl.state.apply(TOKENS, body, deleted=type == "DELETED")
        after_listing(type)
        ctl.enqueue(TOKENS, (namespace, name))
        account = spec.get("serviceAccountName")
        if account:
            ctl.enqueue_quietly(SA, (namespace, account))

    @kopf.on.event("v1", "secrets", labels=ours, registry=registry)
    async def secret_changed(namespace: str, labels: kopf.Labels, body: kopf.Body, type: str | None, **_: Any) -> None:
        ctl.state.apply("secrets", body, deleted=type == "DELETED")
        after_listing(type)
        token = labels.get(constants.TOKEN_NAME_LABEL)
        if token:
            ctl.enqueue(TOKENS, (namespace, token))

    return registry


def _token_gate(status: Mapping[str, Any]) -> tuple[Any, Any]:
    """What in an account's status decides whether its tokens may be issued or must be revoked."""
    return status.get("phase"), status.get("lockEpoch")
