"""How to reach Authentik; built by the operator's settings from environment variables."""

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

RecoveryEmailVariant = Literal["auto", "body", "query"]


class AuthentikConfig(BaseModel):
    """Connection, identity and pacing settings of the Authentik client."""

    # Inputs stay out of error messages: a URL may carry credentials, a mistyped field the token.
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    url: str = Field(description="Base URL of Authentik, e.g. the in-cluster Service; /api/v3 is optional.")
    token: SecretStr = Field(description="API token (intent API) of the operator's Authentik user.")
    public_host: str | None = Field(
        default=None,
        description="Public host name of Authentik. Sent as Host so that Authentik picks the brand (and its "
        "recovery flow) and builds links for it; also sends X-Forwarded-Proto: https.",
    )
    email_stage: str | None = Field(
        default=None,
        description="Email stage that sends recovery mails, by uuid or name; unset: the only one there is.",
    )
    user_type: Literal["internal", "external"] = "internal"
    user_agent: str = Field(default="org-operator", description="Tells the operator's replicas apart in logs.")
    concurrency: int = Field(default=8, ge=1, description="Requests in flight at most.")
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=4, ge=0, description="Retries after the first attempt.")
    retry_backoff_base: float = Field(default=0.5, gt=0, description="Seconds; doubled per retry, jittered.")
    retry_backoff_max: float = Field(
        default=10.0,
        gt=0,
        description="Seconds; longest wait, also the longest Retry-After honoured in place.",
    )
    recovery_email_variant: RecoveryEmailVariant = Field(
        default="auto",
        description="body: 2026.2+ (JSON body); query: 2024.4-2025.12 (query string); auto: by version.",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL, e.g. http://authentik-server.authentik.svc")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials: the API token goes in `token`")
        path = parts.path.rstrip("/").removesuffix("/api/v3")
        return f"{parts.scheme}://{parts.netloc}{path}"

    @field_validator("public_host")
    @classmethod
    def _bare_host(cls, value: str | None) -> str | None:
        """Accept `auth.example.com` and, forgivingly, `https://auth.example.com/`."""
        if value is None or not value.strip():
            return None
        value = value.strip()
        return urlsplit(value).netloc if "://" in value else value.rstrip("/")

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v3/"
