"""The embedded default's services listen on loopback only (issue 14.10).

Spark's driver (block manager, RPC) must bind 127.0.0.1. Ray's local node gets address 127.0.0.1
(ray_train.common._loopback_node), so its gcs, raylet, workers and runtime-env agent listen on loopback
only; the test lists every listening socket of the Ray processes while a local Ray job runs. Token
authentication stays on.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.slow


def _listening(pids: set[int]) -> list[tuple[str, int, str]]:
    out = []
    for c in psutil.net_connections(kind="inet"):
        if c.status == psutil.CONN_LISTEN and c.pid in pids:
            out.append((c.laddr.ip, c.laddr.port, psutil.Process(c.pid).name()))
    return out


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _tree(pid: int) -> set[int]:
    p = psutil.Process(pid)
    return {pid, *(c.pid for c in p.children(recursive=True))}


def test_local_services_spark_listens_on_loopback_only(spark):
    # The shared session of the Spark suites (conftest), built by spark_jobs.session.get_spark.
    spark.range(1000).selectExpr("sum(id)").collect()  # the executors' block manager is up too
    # The JVM(s) this process started; a Ray left running by an earlier test in the process is not Spark.
    jvms = {pid for pid in _tree(os.getpid()) if psutil.Process(pid).name() == "java"}
    found = _listening(jvms)
    assert found, "no listening socket found for the Spark JVM"
    wide = [f for f in found if not _is_loopback(f[0])]
    assert not wide, f"Spark listens beyond loopback: {wide}"


class _Sampler(threading.Thread):
    """Collects the listening sockets of this process's tree every 0.2 s (Ray starts workers as it goes)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.found: set[tuple[str, int, str]] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                self.found.update(_listening(_tree(os.getpid())))
            except psutil.Error:  # a worker exited between the listing and the lookup
                pass
            time.sleep(0.2)

    def stop(self) -> set[tuple[str, int, str]]:
        self.done.set()
        self.join()
        self.found.update(_listening(_tree(os.getpid())))
        return self.found


def test_local_services_ray_listens_on_loopback_only():
    import ray
    import ray.data
    from ray._private import ray_constants

    from b2ner_common.config import RayConfig
    from ray_train.common import init_ray

    if ray.is_initialized():
        ray.shutdown()
    switch = ray_constants.ENABLE_RAY_CLUSTER
    sampler = _Sampler()
    sampler.start()
    assert init_ray(RayConfig(num_cpus=1))
    try:
        # Restored once the node runs: a later cluster join in this process resolves addresses as usual.
        assert ray_constants.ENABLE_RAY_CLUSTER == switch
        assert _is_loopback(ray.util.get_node_ip_address())

        @ray.remote
        def task(x: int) -> int:
            return x + 1

        @ray.remote
        class Counter:
            def add(self, x: int) -> int:
                return x + 1

        counter = Counter.remote()
        assert ray.get([task.remote(1), counter.add.remote(1)]) == [2, 2]
        assert ray.data.range(50).map_batches(lambda b: {"id": b["id"] * 2}).sum("id") == 2450
        found = sampler.stop()
        names = {name for _, _, name in found}
        assert {"gcs_server", "raylet"} <= names, f"Ray's servers not found listening: {sorted(found)}"
        wide = sorted(f for f in found if not _is_loopback(f[0]))
        assert not wide, f"Ray listens beyond loopback: {wide}"
        # Token authentication stays on as well (the project used to set RAY_AUTH_MODE=disabled).
        assert os.environ.get("RAY_AUTH_MODE", "token") != "disabled"
        token = Path.home() / ".ray" / "auth_token"
        assert token.is_file() and token.read_text().strip()
    finally:
        sampler.done.set()
        ray.shutdown()
