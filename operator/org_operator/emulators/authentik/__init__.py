"""An Authentik emulator that speaks the real `/api/v3` contract for the endpoints the operator uses."""

from .model import ApiToken, Brand, EmailStage, Group, SentEmail, ServerVersion, Session, User
from .server import DEFAULT_TOKEN, AuthentikEmulator, AuthentikEmulatorThread
from .store import AuthentikStore
from .traffic import Fault, Faults, RecordedRequest, Traffic

__all__ = [
    "DEFAULT_TOKEN",
    "ApiToken",
    "AuthentikEmulator",
    "AuthentikEmulatorThread",
    "AuthentikStore",
    "Brand",
    "EmailStage",
    "Fault",
    "Faults",
    "Group",
    "RecordedRequest",
    "SentEmail",
    "ServerVersion",
    "Session",
    "Traffic",
    "User",
]
