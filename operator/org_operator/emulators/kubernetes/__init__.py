"""A kube-apiserver emulator built on kmock: ``from org_operator.emulators.kubernetes import ...``.

- ``async with KubernetesEmulator.serve(crds=[...]) as api:`` in the current event loop;
- ``with EmulatorThread(crds=[...]) as api:`` on its own loop in a background thread;
- ``python -m org_operator.emulators.kubernetes --port 0 --crds DIR`` as a process.
"""

from .cluster import Cluster
from .emulator import KubernetesEmulator, write_kubeconfig
from .errors import ApiError, FieldError
from .faults import Fault, Faults, Rule
from .registry import kopf_peering_crds, read_crds
from .requestlog import RequestLog, RequestRecord
from .threaded import EmulatorThread

__all__ = [
    "ApiError",
    "Cluster",
    "EmulatorThread",
    "Fault",
    "Faults",
    "FieldError",
    "KubernetesEmulator",
    "RequestLog",
    "RequestRecord",
    "Rule",
    "kopf_peering_crds",
    "read_crds",
    "write_kubeconfig",
]
