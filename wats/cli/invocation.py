"""How to spell the ``wats-supervisor`` command so that a user can paste it.

After ``make run`` the command lives only in the project's ``.venv/bin``; a banner saying
``wats-supervisor status`` then answers "command not found". What the user typed (or ``make``
ran) is ``sys.argv[0]``: when the same script is what ``PATH`` finds, the bare name is right;
otherwise the script's path is, relative to the current folder when it lies below it
(``.venv/bin/wats-supervisor``).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable

__all__ = ["command_name"]

_NAMES = ("wats-supervisor", "wats-supervisor.exe")


def command_name(
    argv0: str | None = None,
    *,
    which: Callable[[str], str | None] = shutil.which,
    cwd: str | None = None,
) -> str:
    """The command to print in hints: ``wats-supervisor``, ``.venv/bin/wats-supervisor``, or
    ``<python> -m wats.cli.main`` when this process was not started by the console script."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    here = os.path.abspath(cwd or os.getcwd())
    found = which("wats-supervisor")
    if os.path.basename(argv0) not in _NAMES:
        return "wats-supervisor" if found else f"{shlex.quote(sys.executable)} -m wats.cli.main"
    script = os.path.abspath(os.path.join(here, argv0))
    if found and os.path.realpath(found) == os.path.realpath(script):
        return "wats-supervisor"
    relative = os.path.relpath(script, here)
    if not relative.startswith(os.pardir):
        return shlex.quote(relative if os.sep in relative else os.path.join(os.curdir, relative))
    return shlex.quote(script)
