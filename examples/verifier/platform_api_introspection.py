"""How the platform API or the MCP server checks a caller's token: RFC 7662 introspection.

The caller answers 401 when ``introspect`` returns None, 403 when it writes with a token whose
``scope`` is not ``api-secret``, and otherwise serves, attributing usage to ``client_id``
(namespace/service account). The URL and credential come from ``ORG_VERIFIER_URL`` and
``ORG_VERIFIER_INTROSPECTION_CREDENTIAL`` (see introspection-credential.yaml).
"""

from __future__ import annotations

from typing import Any

import httpx


async def introspect(
    http: httpx.AsyncClient, verifier_url: str, credential: str, token: str
) -> dict[str, Any] | None:
    """The token's identity (scope, sub, client_id, exp, jti) if it is active, else None."""
    response = await http.post(
        f"{verifier_url}/introspect",
        data={"token": token},
        headers={"Authorization": f"Bearer {credential}"},
        timeout=2.0,
    )
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer if answer.get("active") else None
