"""Fixtures for the randomized cluster tests (run as their own pytest
invocation, scripts/test.sh stage "cluster"): the integration suite's
conftest (real ringkvd processes on free ports, stopped by PID, sanitizer
checks) is loaded into this module, so its fixtures and helpers, and
tests/integration/cluster_util.py, work here unchanged."""
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(_HERE, "..", "integration"))
_SRC = os.path.join(_HERE, "..", "integration", "conftest.py")
with open(_SRC) as _f:
    exec(compile(_f.read(), _SRC, "exec"))  # noqa: S102 - our own file

_integration_addoption = pytest_addoption  # noqa: F821 - from the exec


def pytest_addoption(parser):  # noqa: F811
    _integration_addoption(parser)
    parser.addoption("--jepsen-seconds", type=float, default=None,
                     help="how long the nemesis runs (default 60, or "
                     "RINGKV_JEPSEN_SECONDS)")
