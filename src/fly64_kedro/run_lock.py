"""One run at a time per data directory.

A run holds an exclusive ``flock`` on ``<data root>/.run.lock`` from before its first node to
after its last, and writes its run id, command, process and start time into the file. A
second run on the same data directory stops at once with the holder's details. The kernel
releases the lock when the holding process ends, however it ends; a lock file that still
names a holder when the lock is free is stale (that run was killed) and is taken over with a
warning. A run that finishes empties the file.

The lock works wherever ``flock`` does: local disks and NFS (emulated with fcntl locks on
Linux). A data root on object storage (``s3://``…) cannot be locked: runs there are not
serialised.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"


class RunLockedError(click.ClickException):
    """Another run holds the data directory; the CLI prints the message alone, without a traceback."""


@dataclass
class RunLock:
    """A held lock: the lock file and its open descriptor."""

    path: Path
    descriptor: int


def _read_holder(descriptor: int) -> dict[str, Any] | None:
    """The holder record in the lock file, None when the file is empty or unreadable."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    text = os.read(descriptor, 65536).decode(errors="replace").strip()
    if not text:
        return None
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"unreadable": text[:200]}
    return holder if isinstance(holder, dict) else {"unreadable": text[:200]}


def describe_holder(holder: dict[str, Any]) -> str:
    """One line naming a holder: run id, command, process and start time."""
    if "unreadable" in holder:
        return f"an unreadable record ({holder['unreadable']!r})"
    command = " ".join(holder.get("command") or []) or "?"
    return (f"run {holder.get('run_id', '?')} (`{command}`, pid {holder.get('pid', '?')} on "
            f"{holder.get('host', '?')}, started {holder.get('started_at', '?')})")


def acquire(data_root: Path, holder: dict[str, Any]) -> RunLock:
    """Take the lock of ``data_root`` for ``holder`` (run_id, command, pid, host, started_at).

    Raises ``RunLockedError`` naming the current holder when another process holds it.
    """
    data_root.mkdir(parents=True, exist_ok=True)
    path = data_root / LOCK_NAME
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        current = _read_holder(descriptor)
        os.close(descriptor)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise
        who = describe_holder(current) if current else "another run (it has not written its record yet)"
        raise RunLockedError(
            f"the data directory {data_root} is in use by {who}. One run at a time per data directory: wait for "
            f"it to finish, or run in another environment (each has its own data directory, e.g. --env test)."
        ) from None
    previous = _read_holder(descriptor)
    if previous:
        logger.warning("Taking over a stale run lock of %s: %s left it and its process is gone "
                       "(its outputs may be incomplete).", data_root, describe_holder(previous))
    os.ftruncate(descriptor, 0)
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.write(descriptor, json.dumps(holder, indent=1).encode())
    os.fsync(descriptor)
    return RunLock(path, descriptor)


def release(lock: RunLock) -> None:
    """Empty the lock file (a finished run leaves no holder behind) and let go of the lock."""
    try:
        os.ftruncate(lock.descriptor, 0)
        fcntl.flock(lock.descriptor, fcntl.LOCK_UN)
    finally:
        os.close(lock.descriptor)
