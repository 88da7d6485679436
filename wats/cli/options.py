"""Options every command that reads the configuration shares: ``--config`` and ``--instance``.

One definition, so every command spells, explains and abbreviates them the same way. This
module imports nothing from ``wats.cli``: command modules load while ``wats.cli.main`` is still
initialising, and importing an options module must never close an import cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wats.config import CONFIG_ENV

__all__ = ["ConfigOption", "InstanceOption"]

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help=f"Config file (default: ${CONFIG_ENV}, else the per-user config.toml).",
        dir_okay=False,
    ),
]
# "\[" keeps rich (typer's help renderer) from reading "[instance]" as a style tag.
InstanceOption = Annotated[
    str | None,
    typer.Option("--instance", "-i", help="Instance name (overrides the \\[instance] name)."),
]
