"""``zoo launch --workers N RECIPE [options]``: a multi-worker run on this host.

Starts N processes of ``zoo run RECIPE [options] --strategy multi_worker``, each with a
``TF_CONFIG`` naming all N on free loopback ports, and prefixes each line they print with
``[worker I]``. When any worker fails, the others are stopped (SIGTERM, then SIGKILL after a
grace period: a worker blocked in a collective ignores SIGTERM) and the launch exits with the
failed worker's status. Workers die with the launcher (Linux's parent-death signal), so an
interrupted launch leaves no process behind. It is how the tests run multi-worker training,
and how to try a cluster command before running it on several hosts (README, "Training on
several machines"). Imports no TensorFlow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from recipes.runtime import cluster
from recipes.runtime.config import ConfigError

GRACE_SECONDS = 10  # between SIGTERM and SIGKILL when stopping workers


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when the launcher dies (Linux prctl PR_SET_PDEATHSIG)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)


def worker_command(recipe_args: list[str]) -> list[str]:
    """``python -m recipes run RECIPE ... --strategy multi_worker``; refuses another strategy."""
    for index, argument in enumerate(recipe_args):
        value = None
        if argument == "--strategy" and index + 1 < len(recipe_args):
            value = recipe_args[index + 1]
        elif argument.startswith("--strategy="):
            value = argument.split("=", 1)[1]
        if value not in (None, "multi_worker"):
            raise ConfigError(f"zoo launch runs --strategy multi_worker; got --strategy {value}")
    return [sys.executable, "-u", "-m", "recipes", "run", *recipe_args, "--strategy", "multi_worker"]


def _relay(index: int, stream, lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            sys.stdout.write(f"[worker {index}] {line}")
            sys.stdout.flush()


def _stop(processes: list) -> None:
    """SIGTERM every worker's process group still running, then SIGKILL what is left."""
    running = [process for process in processes if process.poll() is None]
    for process in running:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + GRACE_SECONDS
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for process in processes:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()


def describe_status(status: int) -> str:
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def launch(workers: int, recipe_args: list[str], host: str = "127.0.0.1", timeout: float = 0,
           log=print) -> int:
    """Run ``recipe_args`` on ``workers`` local worker processes; returns the launch's exit status."""
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    if not recipe_args or recipe_args[0].startswith("-"):
        raise ConfigError("usage: zoo launch --workers N RECIPE [--FIELD VALUE ...]")
    command = worker_command(recipe_args)
    addresses = [f"{host}:{port}" for port in cluster.free_ports(workers, host)]
    log(f"[launch] {workers} workers of `zoo run {' '.join(recipe_args)}` at {', '.join(addresses)}")
    lock, processes, relays = threading.Lock(), [], []
    for index in range(workers):
        tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
        environment = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1",
                       "ZOO_COMMAND": f"zoo launch --workers {workers} {' '.join(recipe_args)}"}  # for the row
        process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True,
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        processes.append(process)
        log(f"[launch] worker {index} (pid {process.pid}) at {addresses[index]}")
    # The relaying threads start once every worker is: preexec_fn is unsafe in a process with threads.
    for index, process in enumerate(processes):
        relays.append(threading.Thread(target=_relay, args=(index, process.stdout, lock), daemon=True))
        relays[-1].start()
    deadline = time.monotonic() + timeout if timeout > 0 else None
    status, failed = 0, None
    try:
        while any(process.poll() is None for process in processes):
            failed = next((index for index, process in enumerate(processes)
                           if process.poll() not in (None, 0)), None)
            if failed is not None:
                break
            if deadline is not None and time.monotonic() > deadline:
                log(f"[launch] still running after --timeout {timeout:g} s; stopping the workers")
                status = 124
                break
            time.sleep(0.2)
        failed = next((index for index, process in enumerate(processes) if process.poll() not in (None, 0)), failed)
    except KeyboardInterrupt:
        status = 130
    finally:
        _stop(processes)
        for relay in relays:
            relay.join(timeout=5)
    if failed is not None:
        code = processes[failed].returncode
        print(f"error: [launch] worker {failed} failed ({describe_status(code)}); stopped the other workers. "
              f"Its lines above, prefixed [worker {failed}], say why.", file=sys.stderr)
        return code if code in (1, 2) else 1
    if status == 0:
        log(f"[launch] all {workers} workers finished")
    return status
