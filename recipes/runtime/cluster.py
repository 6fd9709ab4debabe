"""The cluster of a multi-worker run: who the workers are, and a bounded wait for them.

``--strategy multi_worker`` trains with TensorFlow's MultiWorkerMirroredStrategy. The
cluster comes from ``TF_CONFIG`` (one JSON per process: every worker's ``host:port`` and
this process's index), else from a Slurm job step (``srun``: ``SLURM_PROCID``,
``SLURM_STEP_NODELIST``, ``SLURM_STEP_TASKS_PER_NODE``; ports from ``ZOO_SLURM_PORT``, 8888
by default, one per task on a node). Worker 0 is the chief, unless the cluster names one.

Joining a cluster blocks inside TensorFlow's C++ (holding Python's lock, and deaf to
SIGTERM) until every worker has registered; with a peer missing it would wait forever.
So a small watchdog process guards the start: when the strategy and a first all-reduce are
not done within ``--worker-timeout`` seconds, it prints which addresses answered and which
did not, and kills the process (exit status 137). After the start, a worker that dies is
noticed by TensorFlow's coordination-service heartbeat or a refused connection, and the
others stop with ``tf.errors.UnavailableError`` (``__main__`` turns it into a message).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from recipes.runtime import console
from recipes.runtime.config import ConfigError

SLURM_PORT_BASE = 8888


@dataclass
class Task:
    """This process's place in the cluster."""

    addresses: list  # every task's host:port, in the cluster's order (chief first)
    task_type: str  # "worker" or "chief"
    index: int
    source: str  # "TF_CONFIG" or "Slurm"
    has_chief: bool = False  # the cluster names a chief task besides its workers

    @property
    def is_chief(self) -> bool:
        return self.task_type == "chief" or (self.task_type == "worker" and self.index == 0
                                              and not self.has_chief)

    @property
    def workers(self) -> int:
        return len(self.addresses)

    @property
    def name(self) -> str:
        return f"{self.task_type} {self.index}"


def tf_config_task(text: str) -> Task:
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"TF_CONFIG is not valid JSON: {error}") from None
    cluster, task = spec.get("cluster") or {}, spec.get("task") or {}
    if not cluster.get("worker") and not cluster.get("chief"):
        raise ConfigError(f"TF_CONFIG names no workers: {text!r}; expected "
                          f"{{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, \"task\": {{...}}}}")
    addresses = [*cluster.get("chief", []), *cluster.get("worker", [])]
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    if task_type not in ("chief", "worker") or index >= len(cluster.get(task_type, [])):
        raise ConfigError(f"TF_CONFIG's task {task!r} is not in its cluster {cluster!r}")
    return Task(addresses, task_type, index, "TF_CONFIG", has_chief="chief" in cluster)


def slurm_task(environ=os.environ) -> Task:
    """Worker ``SLURM_PROCID`` of the job step's tasks, ports counted up from ``ZOO_SLURM_PORT``."""
    from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import (
        expand_hostlist,
        expand_tasks_per_node,
    )

    try:
        hosts = expand_hostlist(environ["SLURM_STEP_NODELIST"])
        tasks_per_node = expand_tasks_per_node(environ["SLURM_STEP_TASKS_PER_NODE"])
        rank = int(environ["SLURM_PROCID"])
    except KeyError as missing:
        raise ConfigError(f"strategy=multi_worker under Slurm needs {missing} (run the command with srun)") from None
    port_base = int(environ.get("ZOO_SLURM_PORT", SLURM_PORT_BASE))
    # The order TensorFlow's SlurmClusterResolver uses: hosts sorted, ports counted up per host.
    addresses = [f"{host}:{port_base + offset}" for host, count in sorted(zip(hosts, tasks_per_node))
                 for offset in range(count)]
    if rank >= len(addresses):
        raise ConfigError(f"SLURM_PROCID={rank}, but the step has {len(addresses)} tasks: {addresses}")
    return Task(addresses, "worker", rank, "Slurm")


def current_task(environ=os.environ) -> Task | None:
    """This process's task from TF_CONFIG, else from Slurm; None outside a cluster."""
    if environ.get("TF_CONFIG"):
        return tf_config_task(environ["TF_CONFIG"])
    if "SLURM_PROCID" in environ and "SLURM_STEP_NODELIST" in environ:
        return slurm_task(environ)
    return None


def is_chief(environ=os.environ) -> bool:
    """True on the task that writes results (always, outside a cluster)."""
    try:
        task = current_task(environ)
    except ConfigError:
        return True
    return task is None or task.is_chief


def _resolver(task: Task):
    import tensorflow as tf

    if task.source == "TF_CONFIG":
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = tf.train.ClusterSpec({"worker": task.addresses})
    return tf.distribute.cluster_resolver.SimpleClusterResolver(spec, task_type="worker", task_id=task.index,
                                                               rpc_layer="grpc")


# Runs beside the joining process: exits quietly when the parent closes its stdin (it joined,
# or it died); otherwise, after the timeout, says which peers answer and kills the parent.
WATCHDOG = r"""
import os, select, signal, socket, sys
parent, seconds, name, addresses = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
if select.select([sys.stdin], [], [], seconds)[0]:
    sys.exit(0)
def probe(address):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
        return "listening"
    except OSError as error:
        return f"not reachable: {error.strerror or error}"
lines = [f"  {address}: {probe(address)}" for address in addresses]
sys.stderr.write(f"error: {name} could not join its cluster of {len(addresses)} workers within {seconds:g} s "
                 f"(--worker-timeout). The workers' addresses:\n" + "\n".join(lines) +
                 "\nStart every worker with the same cluster (zoo launch --workers N starts them on one host), "
                 "check that each host and port is reachable from here, or raise --worker-timeout.\n")
sys.stderr.flush()
os.kill(parent, signal.SIGKILL)
"""


def start_strategy(task: Task, timeout: float):
    """MultiWorkerMirroredStrategy over ``task``'s cluster, joined within ``timeout`` seconds."""
    import tensorflow as tf

    if timeout <= 0:
        raise ConfigError(f"--worker-timeout must be > 0 seconds, got {timeout}")
    watchdog = subprocess.Popen([sys.executable, "-c", WATCHDOG, str(os.getpid()), str(timeout), task.name,
                                 *task.addresses], stdin=subprocess.PIPE,
                                stderr=console.unfiltered_stderr())  # it kills this process right after writing
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_resolver(task))
        any_worker(strategy, False)  # a first all-reduce: every worker is up and reaches the others
    except tf.errors.OpError as error:  # a peer refused or timed out before the watchdog fired
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClusterError(f"{task.name} could not join its cluster {task.addresses} ({type(error).__name__}: "
                           f"{first_line[:300]}). Start every worker with the same cluster and check that each "
                           f"address is reachable from here.") from None
    finally:
        watchdog.stdin.close()
        watchdog.wait()
    return strategy


def any_worker(strategy, flag: bool) -> bool:
    """True when ``flag`` is True on any worker (an all-reduce; outside a cluster, ``flag``).

    For decisions each worker would otherwise take on its own clock, such as stopping at a
    time budget: every worker must run the same steps, or their collectives stop matching.
    Every worker must call it at the same points."""
    import tensorflow as tf

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return flag
    if strategy not in _ANY_FUNCTIONS:
        @tf.function
        @tf.autograph.experimental.do_not_convert
        def any_flag(value):
            return strategy.reduce("SUM", strategy.run(tf.identity, args=(value,)), axis=None)

        _ANY_FUNCTIONS[strategy] = any_flag
    return bool(_ANY_FUNCTIONS[strategy](tf.constant(float(flag))) > 0)


_ANY_FUNCTIONS: dict = {}


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports free on ``host`` now (all held open together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            probe = socket.socket()
            probe.bind((host, 0))
            sockets.append(probe)
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


class ClusterError(RuntimeError):
    """The workers could not form their cluster, or one of them was lost; the message says what to do."""


class WorkerLostError(ClusterError):
    """A peer stopped answering during a multi-worker run; the message says how to resume."""


@contextlib.contextmanager
def worker_folder(run_dir: str):
    """The folder this process writes the run's artifacts to: ``run_dir`` on the chief (and
    outside a cluster); on another worker a temporary folder, removed at the end.

    Every worker saves (checkpoints, the model) under this strategy, but only the chief's
    files are the run's. A relaunched worker resumes from the chief's checkpoint: it is
    copied here first, so all workers restart from the same finished epoch. The folder's
    name follows from the run and the task, so a relaunch replaces what a killed worker left.
    """
    import hashlib
    import shutil
    import tempfile

    task = current_task()
    if task is None or task.is_chief:
        yield run_dir
        return
    digest = hashlib.sha256(os.path.abspath(run_dir).encode()).hexdigest()[:12]
    folder = os.path.join(tempfile.gettempdir(), f"zoo-worker-{digest}-{task.task_type}{task.index}")
    shutil.rmtree(folder, ignore_errors=True)
    chief_backup = os.path.join(run_dir, "backup")
    if os.path.isdir(chief_backup):
        shutil.copytree(chief_backup, os.path.join(folder, "backup"))
    else:
        os.makedirs(folder)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def peer_failures(workers: int, run_dir: str):
    """Turn TensorFlow's errors for a lost peer into WorkerLostError (only with several workers)."""
    import tensorflow as tf

    lost = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
            tf.errors.DeadlineExceededError)
    try:
        yield
    except lost as error:
        if workers <= 1:
            raise
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise WorkerLostError(
            f"A worker of this {workers}-worker run stopped answering ({type(error).__name__}: {first_line[:300]}). "
            f"Nothing was published. Launch the same command on every worker again: it resumes from the last "
            f"finished epoch in {os.path.join(run_dir, 'backup')} (kept on storage every worker sees).") from None
