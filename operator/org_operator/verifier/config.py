"""The verifier's settings: one typed object, built by the CLI or from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

INTROSPECTION_TOKEN_ENV = "ORG_OPERATOR_INTROSPECTION_TOKEN"
INTROSPECTION_TOKEN_FILE_ENV = "ORG_OPERATOR_INTROSPECTION_TOKEN_FILE"
LAST_USED_WINDOW_ENV = "ORG_OPERATOR_LAST_USED_WINDOW"
LIST_PAGE_SIZE_ENV = "ORG_OPERATOR_VERIFIER_LIST_PAGE_SIZE"
STALE_AFTER_ENV = "ORG_OPERATOR_VERIFIER_STALE_AFTER"


class VerifierConfig(BaseModel):
    """Where to listen, what to watch, and how often to write ``lastUsedAt``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535, description="/auth and the probes; 0 picks a free port.")
    introspection_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve /introspect here instead; None: on ``port``."
    )
    metrics_port: int | None = Field(
        default=None, ge=0, le=65535, description="Serve /metrics here instead; None: on ``port``."
    )
    namespaces: tuple[str, ...] = Field(default=(), description="Namespaces to serve; empty: all.")
    introspection_token: SecretStr | None = Field(
        default=None, description="Bearer credential for POST /introspect; None disables it."
    )
    last_used_window: float = Field(default=60.0, gt=0, description="Seconds between lastUsedAt writes.")
    last_used_concurrency: int = Field(default=8, ge=1, description="Parallel lastUsedAt writes.")
    max_header_size: int = Field(
        default=65536, ge=8190, description="Header line limit, so oversized headers get our 401."
    )
    list_page_size: int = Field(default=500, ge=1, description="Items per list page (bounds memory).")
    watch_timeout_seconds: int = Field(
        default=3, ge=1, description="timeoutSeconds of each watch: the server's end of it proves it is there."
    )
    stale_after: float = Field(
        default=10.0,
        gt=0,
        description="Seconds without word from the API server on any feed before /readyz, /auth and "
        "/introspect answer 503 (fail closed).",
    )

    @model_validator(mode="after")
    def _quiet_is_not_stale(self) -> VerifierConfig:
        if self.stale_after <= self.watch_timeout_seconds:
            raise ValueError(
                f"stale_after ({self.stale_after:g} s) must exceed watch_timeout_seconds "
                f"({self.watch_timeout_seconds} s), or a quiet cluster would look stale"
            )
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ, **overrides: Any) -> VerifierConfig:
        """Settings from ``ORG_OPERATOR_*`` variables; explicit ``overrides`` win."""
        values: dict[str, Any] = {}
        token = environ.get(INTROSPECTION_TOKEN_ENV)
        token_file = environ.get(INTROSPECTION_TOKEN_FILE_ENV)
        if token:
            values["introspection_token"] = token
        elif token_file:
            values["introspection_token"] = Path(token_file).read_text().strip()
        for field, variable in (
            ("last_used_window", LAST_USED_WINDOW_ENV),
            ("list_page_size", LIST_PAGE_SIZE_ENV),
            ("stale_after", STALE_AFTER_ENV),
        ):
            if environ.get(variable):
                values[field] = environ[variable]
        return cls.model_validate({**values, **overrides})
