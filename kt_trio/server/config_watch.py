"""`serve --watch`: reload when a config file changes.

The files are polled (no inotify: it misses changes on network file systems and in bind-mounted
config maps, and a poll is a few stat calls and hashes of small files a second). A change is any
difference in the list of files (a pack added to or removed from a directory), a file's size,
modification time or content hash. A file caught half-written fails validation, is rejected
(nothing changes) and is tried again on its next change, i.e. once the editor finishes writing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path

import trio

from kt_trio.config.packs import CONFIG_SUFFIXES
from kt_trio.server.reload import Reloader

log = logging.getLogger("kt_trio.reload")

# About how soon a saved change is live; each poll reads the config files (a few KiB).
WATCH_INTERVAL_SECS = 1.0

Fingerprint = tuple[tuple[str, int, int, str] | tuple[str, str], ...]


def fingerprint(paths: Sequence[str]) -> Fingerprint:
    """What the files look like now: per file (name, size, mtime, sha256) or (name, error)."""
    entries: list[tuple[str, int, int, str] | tuple[str, str]] = []
    for path in paths:
        p = Path(path)
        try:
            files = (
                sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in CONFIG_SUFFIXES)
                if p.is_dir()
                else [p]
            )
        except OSError as exc:
            entries.append((str(p), type(exc).__name__))
            continue
        for file in files:
            try:
                stat = file.stat()
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
            except OSError as exc:
                entries.append((str(file), type(exc).__name__))
                continue
            entries.append((str(file), stat.st_size, stat.st_mtime_ns, digest))
    return tuple(entries)


async def watch_config(
    reloader: Reloader,
    interval: float = WATCH_INTERVAL_SECS,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Polls `reloader.paths` every `interval` seconds and reloads on each change; for ever."""
    last = await trio.to_thread.run_sync(fingerprint, reloader.paths)
    log.info("watching %s for changes", ", ".join(reloader.paths))
    task_status.started()
    while True:
        await trio.sleep(interval)
        now = await trio.to_thread.run_sync(fingerprint, reloader.paths)
        if now != last:
            last = now
            await reloader.reload("watch")
