"""What the operator reads from Authentik, parsed leniently (Authentik adds fields between versions)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from org_operator.api.constants import GROUP

# Attribute that ties an Authentik user to the Kubernetes object that created it.
OWNER_ATTRIBUTE = f"{GROUP}/owner"
# Attribute of a Client group the operator created: the organization (namespace) it belongs to.
ORGANIZATION_ATTRIBUTE = f"{GROUP}/organization"
FIRST_NAME_ATTRIBUTE = "firstName"
LAST_NAME_ATTRIBUTE = "lastName"

ResolvedRecoveryVariant = Literal["body", "query", "both"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Owner(_Lenient):
    """The Kubernetes object that owns an Authentik user; `uid` alone identifies it."""

    namespace: str
    name: str
    uid: str

    def marker(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}


def user_attributes(owner: Owner, *, first_name: str, last_name: str) -> dict[str, Any]:
    """The attributes the operator writes on a user it manages."""
    return {OWNER_ATTRIBUTE: owner.marker(), FIRST_NAME_ATTRIBUTE: first_name, LAST_NAME_ATTRIBUTE: last_name}


class User(_Lenient):
    pk: int
    username: str
    name: str = ""
    email: str = ""
    is_active: bool = True
    path: str = ""
    type: str = "internal"
    is_superuser: bool = False
    groups: list[str] = Field(default_factory=list, description="Group uuids.")
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def owner(self) -> Owner | None:
        """The owner marker, or None when absent or malformed (e.g. edited by hand)."""
        try:
            return Owner.model_validate(self.attributes.get(OWNER_ATTRIBUTE))
        except ValidationError:
            return None


class Group(_Lenient):
    pk: str
    name: str
    is_superuser: bool = False
    attributes: dict[str, Any] = Field(default_factory=dict)

    @property
    def organization(self) -> str | None:
        """The namespace this group was created for by the operator, if it carries our marker."""
        value = self.attributes.get(ORGANIZATION_ATTRIBUTE)
        return value if isinstance(value, str) else None


class EmailStage(_Lenient):
    pk: str
    name: str


class CheckReport(_Lenient):
    """Outcome of the startup check; `problems` say what to fix in Authentik or in the token's rights."""

    version: str
    token_user: str
    recovery_email_variant: ResolvedRecoveryVariant
    email_stage: EmailStage | None
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems
