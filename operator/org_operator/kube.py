"""A thin async Kubernetes API client: the few verbs the operator, the verifier and the CLI use.

kopf watches and indexes; this client does our own writes, so that each write is deliberate and
countable. Credentials come from the official ``kubernetes`` package's config loaders (kubeconfig
or in-cluster service account), so every auth method they support works; aiohttp does the I/O.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final

import aiohttp
import kopf
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from .api import constants

USER_AGENT: Final = "org-operator"
VERIFIER_USER_AGENT: Final = "org-operator-verifier"
MERGE_PATCH: Final = "application/merge-patch+json"


class KubeError(Exception):
    """A Status answer of the API server; carries its code, reason and message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message


class NotFound(KubeError):
    pass


class Conflict(KubeError):
    """409: AlreadyExists on create, Conflict on a stale resourceVersion."""


class Invalid(KubeError):
    pass


class NotLeading(Exception):
    """A write refused before it was sent: this replica does not hold the leader Lease (any more)."""


def path(
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
    *,
    group: str | None = constants.GROUP,
    version: str = constants.VERSION,
) -> str:
    """The URL path of a collection, an object or a subresource (core kinds: ``group=None``)."""
    base = f"/api/{version}" if group is None else f"/apis/{group}/{version}"
    parts = [base]
    if namespace:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name:
        parts.append(name)
    if subresource:
        parts.append(subresource)
    return "/".join(parts)


def core_path(plural: str, namespace: str | None = None, name: str | None = None) -> str:
    return path(plural, namespace, name, group=None, version="v1")


def load_configuration(kubeconfig: str | None = None, context: str | None = None) -> k8s_client.Configuration:
    """In-cluster service account if present, else ``kubeconfig`` or ``$KUBECONFIG`` read now, else ~/.kube/config.

    ``$KUBECONFIG`` is read at call time: the kubernetes package would use the value it saw at import.
    """
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(
            config_file=kubeconfig or os.environ.get("KUBECONFIG") or None,
            context=context,
            client_configuration=configuration,
        )
    return configuration


def kopf_connection(configuration: k8s_client.Configuration) -> kopf.ConnectionInfo:
    """The same credentials, in the shape kopf's login handlers return."""
    authorization = configuration.get_api_key_with_prefix("authorization") or ""
    scheme, _, token = authorization.partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        scheme=scheme or None,
        token=token or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
    )


class Kube:
    """Async access to one Kubernetes API server.

    aiohttp rather than httpx: it is already here for kopf, and its client costs a fraction of the
    CPU per request, which is what bounds a burst of thousands of writes on a small machine.
    """

    def __init__(
        self,
        base_url: str,
        authorization: Callable[[], str | None],
        ssl_context: ssl.SSLContext | bool = True,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._user_agent = user_agent
        self.may_write: Callable[[], bool] | None = None
        """When set, every write first asks it, and raises ``NotLeading`` on False: the fence that keeps a
        replica that lost (or never held) the Lease from writing, even right after a freeze."""
        self._authorization = authorization
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_config(
        cls, kubeconfig: str | None = None, context: str | None = None, user_agent: str = USER_AGENT
    ) -> Kube:
        """Load credentials like kubectl does: in-cluster if available, else the kubeconfig."""
        return cls.from_configuration(load_configuration(kubeconfig, context), user_agent)

    @classmethod
    def from_configuration(cls, configuration: k8s_client.Configuration, user_agent: str = USER_AGENT) -> Kube:
        ssl_context: ssl.SSLContext | bool = False
        if configuration.verify_ssl:
            ssl_context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
            if configuration.cert_file:
                ssl_context.load_cert_chain(configuration.cert_file, configuration.key_file)
        return cls(configuration.host, lambda: configuration.get_api_key_with_prefix("authorization"), ssl_context,
                   user_agent)

    @classmethod
    def for_url(cls, url: str) -> Kube:
        """An unauthenticated client, for the emulator on loopback."""
        return cls(url, lambda: None, False)

    @property
    def session(self) -> aiohttp.ClientSession:
        """Created on first use, inside the event loop that uses it."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, ssl=self._ssl),
                timeout=aiohttp.ClientTimeout(total=30.0, connect=10.0),
                read_bufsize=2**22,  # watch lines are whole objects
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Kube:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self._user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        authorization = self._authorization()
        if authorization:
            headers["Authorization"] = authorization
        return headers

    async def _request(
        self,
        method: str,
        url: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        if method != "GET" and self.may_write is not None and not self.may_write():
            raise NotLeading(f"{method} {url} refused: this replica is not the leader")
        data = None if body is None else json.dumps(body).encode()
        async with self.session.request(
            method,
            self._base_url + url,
            data=data,
            params=params,
            headers=self._headers(content_type if data is not None else None),
        ) as response:
            raw = await response.read()
            if response.status < 400:
                return json.loads(raw) if raw else {}  # type: ignore[no-any-return]
            raise _error(response.status, _error_payload(raw))

    async def get(self, url: str) -> dict[str, Any] | None:
        try:
            return await self._request("GET", url)
        except NotFound:
            return None

    async def list(self, url: str, **params: str) -> dict[str, Any]:
        return await self._request("GET", url, params=params)

    async def create(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self._request("POST", url, body=body)

    async def replace(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """PUT: the whole object, guarded by the resourceVersion it carries."""
        return await self._request("PUT", url, body=body)

    async def patch(
        self, url: str, body: Any, *, content_type: str = MERGE_PATCH
    ) -> dict[str, Any]:
        return await self._request("PATCH", url, body=body, content_type=content_type)

    async def delete(self, url: str, *, uid: str | None = None) -> bool:
        """Delete an object; False if it was already gone. ``uid`` guards against a namesake."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}} if uid else None
        try:
            await self._request("DELETE", url, body=body)
        except NotFound:
            return False
        return True

    async def watch(
        self, url: str, *, resource_version: str, timeout_seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream watch events from ``resource_version`` until the server closes the stream."""
        params = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10.0, sock_read=timeout_seconds + 30.0)
        async with self.session.get(
            self._base_url + url, params=params, headers=self._headers(), timeout=timeout
        ) as response:
            if response.status >= 400:
                raw = await response.read()
                raise _error(response.status, _error_payload(raw))
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)


def _error_payload(raw: bytes) -> Mapping[str, Any]:
    """An error answer's Status object; not every answer is one (the apiserver's own rate limiter answers
    429 in text/plain, a proxy in HTML), and those must still become a ``KubeError`` the caller retries."""
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        return payload
    return {"message": raw[:200].decode("utf-8", errors="replace").strip()}


def _error(code: int, payload: Mapping[str, Any]) -> KubeError:
    reason = str(payload.get("reason", "Unknown"))
    message = str(payload.get("message", ""))
    if code == 404:
        return NotFound(code, reason, message)
    if code == 409:
        return Conflict(code, reason, message)
    if code == 422:
        return Invalid(code, reason, message)
    return KubeError(code, reason, message)
