"""Worker specs: which workers the supervisor runs, and how, as read from the config."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Shutdown order: producers first so no new work enters, then consumers drain what is in flight,
# then services (server, health) that the others may need until the very end.
STOP_ORDER: tuple[str, ...] = ("producer", "consumer", "service")


@dataclass(frozen=True)
class WorkerSpec:
    """One worker the supervisor keeps running: its name, import target, role and arguments."""

    name: str
    target: str
    role: str = "service"
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def stop_rank(self) -> int:
        """Position of this worker's role in the shutdown order (unknown roles stop last)."""
        return STOP_ORDER.index(self.role) if self.role in STOP_ORDER else len(STOP_ORDER)


def specs_from_config(config: Any) -> list[WorkerSpec]:
    """The workers a ``ClientConfig`` enables (``[workers.<name>]``), in config order."""
    specs = []
    for name, worker in config.enabled_workers().items():
        specs.append(
            WorkerSpec(name=name, target=worker.target, role=worker.role, args=dict(worker.args))
        )
    return specs


def stop_groups(specs: Iterable[WorkerSpec]) -> list[list[WorkerSpec]]:
    """Group specs by stop rank, earliest group first (empty groups left out)."""
    by_rank: dict[int, list[WorkerSpec]] = {}
    for spec in specs:
        by_rank.setdefault(spec.stop_rank, []).append(spec)
    return [by_rank[rank] for rank in sorted(by_rank)]
