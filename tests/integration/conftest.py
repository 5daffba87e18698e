"""Fixtures of the integration suite; they live in operator_harness, which the tests import by a unique name."""

from operator_harness import (  # noqa: F401  (pytest finds fixtures by name in this module)
    _quiet_kopf,
    api,
    cluster,
    kubeconfig,
    operator,
    pytest_configure,
    start_operator,
)
