"""kopf wiring: indexes are the operator's read model, watch events only queue reconciles.

Every handler here is an index or an ``on.event`` handler, so kopf itself never writes to our
objects (no finalizers, no annotations, no progress in status): the only writes are the
reconcilers' own, which keeps the API writes per token at the Secret, the status and one Event.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import kopf

from ..api import constants
from ..api.views import (
    ApiTokenView,
    ManagedUserView,
    NamespaceView,
    SecretView,
    ServiceAccountView,
    parse_time,
)
from ..decisions.emails import EmailClaim, normalise
from ..kube import kopf_connection, load_configuration
from ..runtime import cluster
from ..runtime.controller import Controller
from . import api_tokens, managed_users, service_accounts

GROUP, VERSION = constants.GROUP, constants.VERSION
SA, MU, TOKENS = constants.SERVICE_ACCOUNTS, constants.MANAGED_USERS, constants.API_TOKENS
PEERING_NAME = "org-operator"


def configure_kopf(settings: kopf.OperatorSettings) -> None:
    """kopf's own bookkeeping, should it ever write any, lives under our domain."""
    settings.persistence.finalizer = constants.KOPF_FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=constants.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=constants.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # we post our own Events, deliberately and countably
    settings.peering.name = PEERING_NAME
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


def _claim(kind: str, body: Any, name: str) -> EmailClaim:
    created = parse_time(body.get("metadata", {}).get("creationTimestamp"))
    return EmailClaim(created=created or datetime.max.replace(tzinfo=UTC), name=name, kind=kind)


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
        await ctl.start(kwargs)

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: Any) -> None:
        await ctl.stop()

    @kopf.index("v1", "namespaces", id="namespaces_index", registry=registry)
    def namespaces_index(name: str, body: kopf.Body, **_: Any) -> dict[str, NamespaceView]:
        return {name: NamespaceView.of(body)}

    @kopf.index(GROUP, VERSION, SA, id="service_accounts_index", registry=registry)
    def service_accounts_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(namespace, name): ServiceAccountView.of(body)}

    @kopf.index(GROUP, VERSION, MU, id="managed_users_index", registry=registry)
    def managed_users_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(namespace, name): ManagedUserView.of(body)}

    @kopf.index(GROUP, VERSION, TOKENS, id="tokens_index", registry=registry)
    def tokens_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(namespace, name): ApiTokenView.of(body)}

    @kopf.index(GROUP, VERSION, TOKENS, id="tokens_by_account_index", registry=registry)
    def tokens_by_account_index(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> Any:
        return {(namespace, spec.get("serviceAccountName")): name}

    ours = {constants.MANAGED_BY_LABEL: constants.MANAGED_BY}

    @kopf.index("v1", "secrets", labels=ours, id="secrets_index", registry=registry)
    def secrets_index(namespace: str, name: str, body: kopf.Body, **_: Any) -> Any:
        return {(namespace, name): SecretView.of(body)}

    @kopf.index(GROUP, VERSION, SA, id="service_account_emails_index", registry=registry)
    def service_account_emails_index(namespace: str, name: str, body: kopf.Body, spec: kopf.Spec, **_: Any) -> Any:
        email = spec.get("email")
        return {(namespace, normalise(email)): _claim(constants.KIND_SERVICE_ACCOUNT, body, name)} if email else {}

    @kopf.index(GROUP, VERSION, MU, id="managed_user_emails_index", registry=registry)
    def managed_user_emails_index(namespace: str, name: str, body: kopf.Body, spec: kopf.Spec, **_: Any) -> Any:
        email = spec.get("email")
        return {(namespace, normalise(email)): _claim(constants.KIND_MANAGED_USER, body, name)} if email else {}

    def requeue_email_claimants(namespace: str, spec: kopf.Spec) -> None:
        email = spec.get("email")
        if not email:
            return
        for claim in ctl.state.email_claims(namespace, normalise(email)):
            plural = SA if claim.kind == constants.KIND_SERVICE_ACCOUNT else MU
            ctl.enqueue(plural, (namespace, claim.name))

    def requeue_tokens_naming(namespace: str, name: str) -> None:
        for token in ctl.state.tokens_of(namespace, name):
            ctl.enqueue(TOKENS, token.meta.key)

    @kopf.on.event("v1", "namespaces", registry=registry)
    async def namespace_changed(name: str, **_: Any) -> None:
        for index, plural in ((cluster.SERVICE_ACCOUNTS, SA), (cluster.MANAGED_USERS, MU), (cluster.TOKENS, TOKENS)):
            for key in ctl.state.keys_in_namespace(index, name):
                ctl.enqueue(plural, key)

    @kopf.on.event(GROUP, VERSION, SA, registry=registry)
    async def service_account_changed(
        namespace: str, name: str, spec: kopf.Spec, status: kopf.Status, meta: kopf.Meta, type: str | None, **_: Any
    ) -> None:
        if type != "DELETED" and not meta.get("deletionTimestamp") and status.get("observedGeneration") == meta.get(
                "generation"):
            ctl.enqueue_quietly(SA, (namespace, name))  # the echo of our own status write: counts only
            return
        ctl.enqueue(SA, (namespace, name))
        requeue_tokens_naming(namespace, name)
        requeue_email_claimants(namespace, spec)

    @kopf.on.event(GROUP, VERSION, MU, registry=registry)
    async def managed_user_changed(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> None:
        ctl.enqueue(MU, (namespace, name))
        requeue_tokens_naming(namespace, name)
        requeue_email_claimants(namespace, spec)

    @kopf.on.event(GROUP, VERSION, TOKENS, registry=registry)
    async def token_changed(namespace: str, name: str, spec: kopf.Spec, **_: Any) -> None:
        ctl.enqueue(TOKENS, (namespace, name))
        account = spec.get("serviceAccountName")
        if account:
            ctl.enqueue_quietly(SA, (namespace, account))

    @kopf.on.event("v1", "secrets", labels=ours, registry=registry)
    async def secret_changed(namespace: str, labels: kopf.Labels, **_: Any) -> None:
        token = labels.get(constants.TOKEN_NAME_LABEL)
        if token:
            ctl.enqueue(TOKENS, (namespace, token))

    return registry
