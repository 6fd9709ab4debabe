"""A quiet console: TensorFlow's C++ log lines hidden, everything else shown as written.

TensorFlow 2.21 logs through absl from C++ before Python can configure anything, and
``TF_CPP_MIN_LOG_LEVEL`` no longer reaches all of it: importing TensorFlow on a CPU machine
prints "All log messages before absl::InitializeLog() is called are written to STDERR",
oneDNN and CUDA-stub notices (twice), and the first device query "failed call to cuInit".
None of it is about the run. ``hide_native_logs()`` routes file descriptor 2 through a
thread that drops lines in absl's format (``I0000 00:00:1796136644.047631  11566 port.cc:153] ...``)
and that banner, and passes everything else on unchanged, Python's warnings and tracebacks
included. Child processes inherit the filter (except those given ``unfiltered_stderr()``). ``zoo run ... --verbose 3`` leaves stderr alone.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NATIVE_LINE = re.compile(rb"^(?:[IWEF]\d{4} [\d:.]+ +\d+ [\w.\-/]+:\d+\] |"
                         rb"WARNING: All log messages before absl::InitializeLog\(\) is called)")
_unfiltered: int | None = None  # the stderr the filter writes to, once installed


def unfiltered_stderr() -> int | None:
    """The process's own stderr, past the filter (None when there is no filter): for a helper
    process that may kill this one right after writing (the cluster watchdog), whose lines
    would otherwise die in the filter's pipe."""
    return _unfiltered


def keep(line: bytes) -> bool:
    """Whether a line of stderr is shown (every line but TensorFlow's native log lines)."""
    return NATIVE_LINE.match(line) is None


def _pump(source: int, target: int) -> None:
    pending = b""
    while True:
        chunk = os.read(source, 1 << 16)
        if not chunk:
            break
        pending += chunk
        *lines, pending = re.split(rb"(?<=[\n\r])", pending)
        shown = b"".join(line for line in lines if keep(line))
        # An unfinished line waits for its end only if it may be a native one (they start I, W, E or F).
        if pending and pending[:1] not in (b"I", b"W", b"E", b"F"):
            shown, pending = shown + pending, b""
        if shown:
            os.write(target, shown)
    if pending and keep(pending):
        os.write(target, pending)
    os.close(source)


def hide_native_logs() -> None:
    """Filter this process's stderr (and its children's) from now until it exits."""
    global _unfiltered
    if _unfiltered is not None:
        return
    sys.stderr.flush()
    _unfiltered = real_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    pump = threading.Thread(target=_pump, args=(read_end, real_stderr), name="stderr-filter", daemon=True)
    pump.start()

    def restore() -> None:  # at exit: the last lines (an error message) reach the terminal
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(real_stderr, 2)  # our end of the pipe closes; the pump ends once children's ends have
        pump.join(timeout=5)

    atexit.register(restore)
