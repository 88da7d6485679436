"""Where each converter's files live: its watch folder, and the pending/done/error/state
folders the pipeline moves files through (DESIGN invariant 1: every hand-off is a folder).

Defaults sit under ``<instance data>/converters/<name>/`` so a converter needs only a
``watch_folder`` in the config; ``state`` (poison counters, the keep-ledger) is never
configurable because nothing outside the pipeline should touch it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from wats.config.models import ClientConfig, ConverterConfig
from wats.config.paths import InstancePaths

__all__ = ["ConverterFolders", "converter_folders", "site_converters_dir"]


@dataclass(frozen=True)
class ConverterFolders:
    """The resolved folders of one converter; ``archive`` is None unless post_action is
    ``archive``. Computing them touches nothing; ``ensure`` creates the working ones."""

    watch: Path
    pending: Path
    done: Path
    error: Path
    archive: Path | None
    state: Path
    create_watch: bool = False

    def ensure(self, *, watch: bool | None = None) -> ConverterFolders:
        """Create the working folders, and the watch folder when ``watch`` (default: the
        converter's ``create_watch_folder``) says so. A watch folder that is not there is
        otherwise left alone: it may be a share that is not mounted yet, and an empty local
        folder in its place would swallow nothing and hide the mistake."""
        make_watch = self.create_watch if watch is None else watch
        for folder in (self.pending, self.done, self.error, self.state):
            folder.mkdir(parents=True, exist_ok=True)
        if make_watch:
            self.watch.mkdir(parents=True, exist_ok=True)
        if self.archive is not None:
            self.archive.mkdir(parents=True, exist_ok=True)
        return self


def converter_folders(cfg: ClientConfig, conv: ConverterConfig) -> ConverterFolders:
    """The folders of ``conv`` in ``cfg``'s instance (empty settings take the defaults)."""
    base = InstancePaths.for_config(cfg).data_dir / "converters" / conv.name

    def chosen(value: str, default: Path) -> Path:
        return Path(value).expanduser() if value.strip() else default

    return ConverterFolders(
        watch=Path(conv.watch_folder).expanduser(),
        pending=chosen(conv.pending_folder, base / "pending"),
        done=chosen(conv.done_folder, base / "done"),
        error=chosen(conv.error_folder, base / "error"),
        archive=(Path(conv.archive_folder).expanduser() if conv.post_action == "archive" else None),
        state=base / "state",
        create_watch=conv.create_watch_folder,
    )


def site_converters_dir(cfg: ClientConfig) -> Path:
    """The folder a site's own converter files (``converter = "name.py"``) are loaded from:
    ``[paths] converters_dir``, else ``<instance data>/site-converters``."""
    if cfg.paths.converters_dir:
        return Path(cfg.paths.converters_dir).expanduser()
    return InstancePaths.for_config(cfg).data_dir / "site-converters"
