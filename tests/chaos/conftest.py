import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: the seeded chaos run (real processes, faults, invariants 1-7)")
