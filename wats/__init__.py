"""wats-supervisor: deliver test-station results to a WATS server without losing any.

Subpackages: ``wats.api`` (the WATS REST client and report models), ``wats.server`` (an embedded
WATS-compatible server), ``wats.cli`` (the ``wats-supervisor`` command). See DESIGN in docs/.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wats-supervisor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
