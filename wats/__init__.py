"""wats-supervisor: deliver test-station results to a WATS server without losing any.

Subpackages: ``wats.api`` (the WATS REST client and report models), ``wats.server`` (an embedded
WATS-compatible server), ``wats.supervisor`` and ``wats.workers`` (the station client),
``wats.cli`` (the ``wats-supervisor`` command). See docs/architecture.md.
"""

# The single source of the version: pyproject.toml reads it from here. A literal rather than
# importlib.metadata, because every worker, sandbox and CLI start imports this package and the
# metadata lookup alone cost ~40 ms of each start (restart latency is a goal).
__version__ = "0.1.0"

__all__ = ["__version__"]
