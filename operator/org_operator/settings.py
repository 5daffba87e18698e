"""The operator's settings: one typed object, read from ``ORG_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AnyHttpUrl, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .identity.config import AuthentikConfig, RecoveryEmailVariant


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORG_OPERATOR_", extra="ignore")

    workers: int = Field(default=32, ge=1, le=512, description="Objects reconciled concurrently.")
    instance: str = Field(default="org-operator", description="Reported as the Events' reportingInstance.")
    account_status_delay: float = Field(
        default=2.0, ge=0, description="Seconds without token changes before a service account's counts are written."
    )
    mcp_server_url: AnyHttpUrl | None = Field(
        default=None, description="When set, token Secrets also carry a ready mcp.json for AI tools."
    )
    mcp_server_name: str = Field(default="org-documents", description="The server's key in mcp.json.")
    stale_after_days: int = Field(default=30, ge=1, description="A token unused this long gets Stale=True.")
    expiry_warning_days: int = Field(default=7, ge=0, description="Warn this many days before a token expires.")
    rotation_propagation: float = Field(
        default=1.0, ge=0, description="Seconds between recording a rotated value in the status and writing it "
        "into the Secret, so verifiers know a value before any consumer can read it.",
    )
    token_switch_grace: float = Field(
        default=600.0, gt=0, description="Seconds a rotated token's previous value must go unused, once the new "
        "one is in use, before it ends early (ConsumersSwitched); keep it above the verifier's usage window.",
    )

    authentik_url: AnyHttpUrl | None = Field(default=None, description="Authentik's base URL; unset: no managed users.")
    authentik_token: SecretStr | None = Field(default=None, description="Authentik API token (intent API).")
    authentik_token_file: Path | None = Field(default=None, description="File holding the token (a mounted Secret).")
    authentik_public_host: str | None = Field(default=None, description="Public host: Authentik's brand and links.")
    authentik_email_stage: str | None = Field(default=None, description="Email stage for recovery mails: uuid or name.")
    authentik_user_type: Literal["internal", "external"] = "internal"
    authentik_concurrency: int = Field(default=8, ge=1, le=256, description="Authentik requests in flight at most.")
    authentik_timeout: float = Field(default=10.0, gt=0, description="Seconds per Authentik request.")
    authentik_recovery_email_variant: RecoveryEmailVariant = "auto"
    allowed_client_groups: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Authentik groups not created by the operator that an organization may name as its Client "
        'group, by namespace (JSON: {"acme": ["Acme Staff"]}); any other group not created for it is refused.',
    )
    resync_interval: float = Field(default=600.0, gt=0, description="Seconds between drift resyncs with Authentik.")
    authentik_recovery_probe: float = Field(
        default=5.0, gt=0, description="Seconds between checks whether Authentik answers again while managed users "
        "wait for it; when it does, they are retried at once instead of after their backoff (up to 300 s).",
    )
    late_write_window: float = Field(
        default=120.0, gt=0, description="Seconds an Authentik write that got no answer (timeout, dropped "
        "connection) may still take to be applied. The user is read again and corrected once it has passed, and a "
        "deletion keeps its finalizer until then; it must exceed the longest a stalled request can take to land.",
    )
    relist_interval: float = Field(
        default=300.0, gt=0, description="Seconds between full re-lists, which drop objects whose deletion was missed."
    )

    leader_election: bool = Field(
        default=True, description="Act only while holding the Lease; off (--standalone) only for a single replica."
    )
    lease_name: str = Field(default="org-operator", description="The coordination.k8s.io Lease the replicas share.")
    lease_namespace: str | None = Field(
        default=None, description="The Lease's namespace; default: the pod's own, else 'default'."
    )
    lease_duration: float = Field(default=15.0, gt=0, description="Seconds a standby waits on a silent leader.")
    lease_renew_deadline: float = Field(default=10.0, gt=0, description="Seconds a leader may fail to renew.")
    lease_retry_period: float = Field(default=2.0, gt=0, description="Seconds between renewals and attempts.")

    @model_validator(mode="after")
    def _lease_timings_are_ordered(self) -> OperatorSettings:
        if not self.lease_retry_period < self.lease_renew_deadline < self.lease_duration:
            raise ValueError("LEASE_RETRY_PERIOD < LEASE_RENEW_DEADLINE < LEASE_DURATION must hold")
        return self

    @model_validator(mode="after")
    def _token_file_is_readable(self) -> OperatorSettings:
        if self.authentik_token_file is not None:
            try:
                self.authentik_token_file.read_text()
            except OSError as error:
                problem = f"cannot read AUTHENTIK_TOKEN_FILE {self.authentik_token_file}: {error.strerror}"
                raise ValueError(problem) from None
        if self.authentik_url is not None and self.authentik_token is None and self.authentik_token_file is None:
            raise ValueError("AUTHENTIK_URL is set but neither AUTHENTIK_TOKEN nor AUTHENTIK_TOKEN_FILE is")
        return self

    def authentik(self) -> AuthentikConfig | None:
        """The Authentik client's configuration, or None when no identity provider is configured."""
        if self.authentik_url is None:
            return None
        token = self.authentik_token
        if self.authentik_token_file is not None:
            token = SecretStr(self.authentik_token_file.read_text().strip())
        assert token is not None
        return AuthentikConfig(
            url=str(self.authentik_url),
            token=token,
            public_host=self.authentik_public_host,
            email_stage=self.authentik_email_stage,
            user_type=self.authentik_user_type,
            user_agent=f"org-operator/{self.instance}",
            concurrency=self.authentik_concurrency,
            timeout_seconds=self.authentik_timeout,
            recovery_email_variant=self.authentik_recovery_email_variant,
        )
