"""Files a run must never leave half-written, and a lock for files several runs share.

``write_text`` and ``write_json`` write under a temporary name in the same folder, flush
to disk and rename over the target, so a kill at any moment leaves the old file or the new
one, never a mix. ``read_json`` turns a truncated or unreadable file into ``SideFileError``
naming it. ``locked(folder)`` serialises read-modify-write cycles across processes (two
recipes finishing at once both append their results row). POSIX only (``fcntl``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile

LOCK_NAME = ".zoo.lock"


class SideFileError(RuntimeError):
    """A side file (a checkpoint's clock, settings, a cache's index) is truncated or unreadable."""


def write_text(path: str, text: str) -> None:
    """Replace ``path`` with ``text`` atomically (temporary file, fsync, rename)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_json(path: str, value, **options) -> None:
    """``json.dump`` to ``path`` atomically; ``options`` go to ``json.dumps`` (indent, default ...)."""
    write_text(path, json.dumps(value, **options))


def read_json(path: str):
    """The JSON in ``path``; SideFileError naming the file when it is cut off or not JSON."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SideFileError(f"{path} is truncated or not JSON ({error}); it was probably cut off while being "
                            f"written: delete it (or its run's backup folder) to start that part over") from None


@contextlib.contextmanager
def locked(folder: str):
    """Hold an exclusive lock on ``folder`` (a ``.zoo.lock`` file in it) for the block."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOCK_NAME), "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
