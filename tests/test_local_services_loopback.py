"""The embedded default's services listen on loopback only (issue 14.10).

Spark's driver (block manager, RPC) must bind 127.0.0.1. Ray 2.60 binds its gcs, raylet and worker gRPC
servers to every interface, and its ray.init turns a 127.0.0.1 node address into the machine's address
(measured), so for Ray the test pins what does hold: token authentication stays on, so a client from
another host cannot submit work without the token.
"""

from __future__ import annotations

import ipaddress
import os
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


def test_local_services_ray_keeps_token_auth_on():
    import ray

    from b2ner_common.config import RayConfig
    from ray_train.common import init_ray

    if ray.is_initialized():
        ray.shutdown()
    assert init_ray(RayConfig(num_cpus=1))
    try:
        # Ray listens on every interface (module docstring); without the token no other host gets in.
        assert os.environ.get("RAY_AUTH_MODE", "token") != "disabled"
        token = Path.home() / ".ray" / "auth_token"
        assert token.is_file() and token.read_text().strip()
    finally:
        ray.shutdown()
