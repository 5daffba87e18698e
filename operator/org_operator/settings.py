"""The operator's settings: one typed object, read from ``ORG_OPERATOR_*`` environment variables."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ORG_OPERATOR_", extra="ignore")

    workers: int = Field(default=32, ge=1, le=512, description="Objects reconciled concurrently.")
    instance: str = Field(default="org-operator", description="Reported as the Events' reportingInstance.")
    account_status_delay: float = Field(
        default=1.0, ge=0, description="Seconds to gather token changes before a service account's counts are written."
    )
    mcp_server_url: AnyHttpUrl | None = Field(
        default=None, description="When set, token Secrets also carry a ready mcp.json for AI tools."
    )
    mcp_server_name: str = Field(default="org-documents", description="The server's key in mcp.json.")
    stale_after_days: int = Field(default=30, ge=1, description="A token unused this long gets Stale=True.")
    expiry_warning_days: int = Field(default=7, ge=0, description="Warn this many days before a token expires.")
