"""The data plane: forward-auth and token introspection from an in-memory index kept by list+watch.

``run_verifier(config, kube)`` is what the CLI runs; ``Verifier`` is the same as an async context
manager with the bound ``url``, for tests, the demo and benchmarks.
"""

from .config import VerifierConfig
from .service import Verifier, run_verifier

__all__ = ["Verifier", "VerifierConfig", "run_verifier"]
