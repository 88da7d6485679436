"""The one place OS differences live: parent death, subreaper, IPC, instance lock, process identity,
machine id.

Workers and the supervisor import from here and never test ``sys.platform`` themselves. POSIX is
implemented and tested; the Windows module is designed alongside it (see ``_windows.py``).
"""

from __future__ import annotations

import os

from wats.platform._common import LockHeld, MachineIdUnavailable, process_is

if os.name == "nt":  # pragma: no cover - not exercised on the CI platform
    from wats.platform._windows import (
        InstanceLock,
        ipc_supported,
        machine_id,
        make_child_subreaper,
        set_parent_death_signal,
    )
else:
    from wats.platform._posix import (
        InstanceLock,
        ipc_supported,
        machine_id,
        make_child_subreaper,
        set_parent_death_signal,
    )

__all__ = [
    "InstanceLock",
    "LockHeld",
    "MachineIdUnavailable",
    "ipc_supported",
    "machine_id",
    "make_child_subreaper",
    "process_is",
    "set_parent_death_signal",
]
