"""A real two-node Ray cluster on loopback: `ray start --head` plus `ray start --address`, each its own raylet
with 1 CPU, started with `--node-ip-address 127.0.0.1`, token authentication on with a token made for this test.

Ray Data predict (lexicon model) and a 2-worker Ray Train fit of the span encoder run against it by
configuration alone (`ray.address=127.0.0.1:P`) in a fresh driver process. What works only because the
driver, the actors and the train workers share one raylet fails here: the train workers cannot share a node
(1 CPU each); the predict actor takes one node's CPU, so the read tasks run on the other (recorded, not
asserted: Ray may also place them before the actor starts).

Storage: both nodes run on this machine, so the warehouse and the run storage (`train.output_dir`) are one
local filesystem that every node sees, as a cluster with a shared volume would; object storage is not tested.

Loopback (measured here, Ray 2.60): every node is started with `--node-ip-address 127.0.0.1`, yet the nodes
and the driver register under the machine's other address, and the gcs, raylet and core-worker gRPC servers
bind the wildcard address (`::`); the GCS answers on the machine's address. The test pins what holds instead:
that listener list, and that a driver without the token is refused while the same driver with it joins.
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
RAY = Path(sys.executable).parent / "ray"
N_DOCS = 40

JOB = textwrap.dedent(
    """
    import json, os, sys, threading, time
    from pathlib import Path

    import psutil
    import ray
    from ray._private.state import available_resources_per_node, total_resources_per_node

    from b2ner_common import tables
    from b2ner_common.config import load_config
    from b2ner_common.models.lexicon import LexiconPredictor
    from ray_train.common import init_ray
    from ray_train.predict import run_predict
    from ray_train.train_span_encoder import train_span_encoder

    tmp, address, base_model, ray_tmp = sys.argv[1:5]
    LEX = {"person": ["Barack Obama", "Angela Merkel"], "location": ["Paris", "Berlin"]}

    def factory():  # runs in each predict actor: note where it runs
        node = ray.get_runtime_context().get_node_id()
        Path(tmp, "actors", f"{node}-{os.getpid()}").touch()
        return LexiconPredictor(LEX)

    common = [f"warehouse={tmp}/wh", f"ray.address={address}"]
    pred_cfg = load_config(None, common + [
        f"predict.input={tmp}/docs.jsonl", "predict.engine=ray", "predict.labels=[person, location]",
        "predict.commit_every=10", "predict.batch_size=4", "predict.run_id=cluster", "predict.workers=2",
    ])
    train_cfg = load_config(None, common + [
        f"train.output_dir={tmp}/runs", "train.run_name=se2", "train.num_workers=2",
        "train.span.source=silver", "train.span.batch_size=4", "train.span.threads_per_worker=1",
        "train.max_steps=4", "train.report_every=2", "train.checkpoint_every=2",
        f"model.base_model={base_model}", "model.span.max_tokens=64",
    ])
    init_ray(pred_cfg.ray)  # by configuration; the stages below find Ray connected

    phase, busy, listeners, stop = ["predict"], {}, set(), threading.Event()

    def ray_pids():
        out = {os.getpid()}
        for p in psutil.process_iter(["pid", "cmdline"]):
            if any(ray_tmp in a for a in (p.info["cmdline"] or [])):
                out.add(p.info["pid"])
        return out

    def watch():  # which nodes had a CPU in use, per phase; every Ray process's listening sockets
        last = 0.0
        while not stop.is_set():
            totals = total_resources_per_node()
            for node, free in available_resources_per_node().items():
                if free.get("CPU", 0) < totals.get(node, {}).get("CPU", 0):
                    busy.setdefault(phase[0], set()).add(node)
            if time.time() - last > 1:
                last, pids = time.time(), ray_pids()
                for c in psutil.net_connections(kind="inet"):
                    if c.status == psutil.CONN_LISTEN and c.pid in pids:
                        try:
                            name = psutil.Process(c.pid).name()
                        except psutil.NoSuchProcess:
                            continue
                        listeners.add((c.laddr.ip, c.laddr.port, name))
            time.sleep(0.05)

    Path(tmp, "actors").mkdir()
    nodes = [n for n in ray.nodes() if n["Alive"]]
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    pred = run_predict(pred_cfg, predictor_factory=factory)
    phase[0] = "train"
    progress = []
    res = train_span_encoder(train_cfg, on_progress=progress.append)
    stop.set()
    watcher.join()
    out = {
        "nodes": sorted(n["NodeManagerAddress"] for n in nodes),
        "driver_ip": ray.util.get_node_ip_address(),
        "predicted": pred.predicted,
        "doc_ids": tables.read_table(f"{tmp}/wh/gold/predictions", columns=["doc_id"])["doc_id"].to_pylist(),
        "actor_nodes": sorted({p.name.split("-")[0] for p in Path(tmp, "actors").iterdir()}),
        "busy": {k: sorted(v) for k, v in busy.items()},
        "train": {"metrics": res["metrics"], "model": res.get("model"), "progress": len(progress)},
        "listeners": sorted(listeners),
    }
    print("RESULT " + json.dumps(out))
    ray.shutdown()
    """
)


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback


def _other_address() -> str | None:
    """An IPv4 address of this machine that is not loopback (None on a host with loopback only)."""
    import psutil

    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not _is_loopback(a.address):
                return a.address
    return None


NO_TOKEN = textwrap.dedent(
    """
    import sys, ray
    try:
        ray.init(address=sys.argv[1])
        print("JOINED", ray.cluster_resources())
    except Exception as e:
        print("REFUSED", type(e).__name__, str(e)[:300])
    """
)


def _join(address: str, tmp: Path, env: dict[str, str], token: bool) -> str:
    """A driver tries to join, with the token or without one (none in the environment, an empty home)."""
    home = tmp / f"home_{token}"
    home.mkdir()
    bare = env if token else {k: v for k, v in env.items() if not k.startswith("RAY_AUTH")}
    bare = {**bare, "HOME": str(home)}
    script = tmp / "join.py"
    script.write_text(NO_TOKEN)
    try:
        res = subprocess.run(
            [sys.executable, str(script), address], env=bare, capture_output=True, text=True, timeout=90
        )
    except subprocess.TimeoutExpired:
        return "TIMEOUT"
    return next(
        (x for x in res.stdout.splitlines() if x.startswith(("JOINED", "REFUSED"))), res.stderr[-500:]
    )


def _write_inputs(tmp: Path) -> None:
    """docs.jsonl for predict; a small silver/samples table for the span-encoder fit."""
    from b2ner_common import tables
    from b2ner_common.schema import SILVER_SAMPLES, Entity, Sample, sample_to_row

    sents = [
        ("Barack Obama visited Paris in June .", [("Barack Obama", "person"), ("Paris", "location")]),
        ("Angela Merkel stayed in Berlin .", [("Angela Merkel", "person"), ("Berlin", "location")]),
        ("Nobody else was there .", []),
    ]
    docs = [{"doc_id": f"d{i:03d}", "text": f"{sents[i % 3][0]} (#{i})"} for i in range(N_DOCS)]
    (tmp / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    rows = []
    for i in range(24):
        text, ents = sents[i % 3]
        text = f"{text} {i}"
        es = [Entity(text.index(m), text.index(m) + len(m), t, m, t) for m, t in ents]
        row = sample_to_row(Sample(f"s{i}", "sample", "train", "en", text, es, f"sample/train:{i}"))
        rows.append({**row, "label_set": ["location", "person"]})
    tables.write_table(
        tables.table_path(tmp / "wh", "silver/samples"), pa.Table.from_pylist(rows, SILVER_SAMPLES)
    )


def _ray_processes(marker: str) -> list:
    """The processes of this test's cluster: every Ray daemon and worker names its session under `marker`."""
    import psutil

    out = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        if p.pid != os.getpid() and any(marker in a for a in (p.info["cmdline"] or [])):
            out.append(p)
    return out


def _stop_cluster(marker: str) -> None:
    """Stop this cluster's processes by id (`ray stop` would stop every Ray on the machine)."""
    import psutil

    procs = _ray_processes(marker)
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=20)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=10)


def test_ray_cluster_two_nodes_run_predict_and_train(tmp_path: Path, tiny_encoder_dir: Path, port_kit):
    _write_inputs(tmp_path)
    token = secrets.token_hex(32)
    # Ray's unix sockets live under the temp dir, whose path must stay under ~100 bytes: not tmp_path.
    ray_tmp = tempfile.mkdtemp(prefix="b2ray", dir="/tmp")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": token,
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    port = port_kit.free()
    address = f"127.0.0.1:{port}"

    def node_args() -> list[str]:
        # Two raylets on one host: every per-node agent port must differ (the defaults are fixed ports).
        return [
            *("--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--temp-dir", ray_tmp),
            *("--object-store-memory", str(200 * 1024**2), "--disable-usage-stats"),
            *("--dashboard-agent-listen-port", str(port_kit.free())),
            *("--dashboard-agent-grpc-port", str(port_kit.free())),
            *("--runtime-env-agent-port", str(port_kit.free())),
            *("--metrics-export-port", str(port_kit.free())),
        ]

    def ray_start(*args: str) -> None:
        res = subprocess.run([str(RAY), "start", *args], env=env, capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    try:
        ray_start(
            "--head",
            *("--port", str(port), "--include-dashboard=false"),
            *node_args(),
        )
        ray_start("--address", address, *node_args())
        script = tmp_path / "job.py"
        script.write_text(JOB)
        res = subprocess.run(
            [sys.executable, str(script), str(tmp_path), address, str(tiny_encoder_dir), ray_tmp],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        line = next((x for x in res.stdout.splitlines() if x.startswith("RESULT ")), None)
        assert line, res.stdout[-3000:] + res.stderr[-6000:]
        out = json.loads(line[len("RESULT ") :])
        print("RESULT", json.dumps(out, indent=1))
        other = _other_address()
        reachable = bool(other) and port_kit.reachable(other, port)
        with_token, no_token = (_join(address, tmp_path, env, t) for t in (True, False))
        print(
            "GCS reachable on", other, reachable, "| driver with token:", with_token, "| without:", no_token
        )
    finally:
        _stop_cluster(ray_tmp)
        shutil.rmtree(ray_tmp, ignore_errors=True)

    # Two nodes. Started with --node-ip-address 127.0.0.1, yet Ray registers them (and the driver) under the
    # machine's address when it has another one (docs/reliability.md): pinned, so a fix in Ray shows here.
    node_ip = other or "127.0.0.1"
    assert out["nodes"] == [node_ip, node_ip] and out["driver_ip"] == node_ip
    # predict: every document has its row, exactly once.
    assert out["predicted"] == N_DOCS
    assert sorted(out["doc_ids"]) == [f"d{i:03d}" for i in range(N_DOCS)]
    assert out["actor_nodes"]
    # train: 2 workers of 1 CPU on 1-CPU nodes held both nodes at once; model saved, loss finite.
    assert len(out["busy"]["train"]) == 2
    metrics = out["train"]["metrics"]
    assert metrics["step"] == 4 and math.isfinite(metrics["loss"])
    assert out["train"]["progress"] > 0  # rank 0 (on either node) reached the driver's progress actor
    from b2ner_common.models.span_encoder.model import load_span_encoder

    model = load_span_encoder(out["train"]["model"])
    assert Path(out["train"]["model"]).is_relative_to(tmp_path / "runs")
    text = "Barack Obama visited Paris ."
    assert all(text[p.start : p.end] == p.text for p in model.predict([text], ["person"], threshold=0.01)[0])

    # Loopback: what Ray binds (module docstring), and the token that stands in for it.
    wide = sorted({(name, ip) for ip, _, name in out["listeners"] if not _is_loopback(ip)})
    assert out["listeners"]
    print("Ray listeners beyond loopback:", wide)
    # Every server binds the wildcard address, the GCS included, and answers on the other address...
    assert {name for name, _ in wide} >= {"gcs_server", "raylet"}
    assert all(ip in ("::", "0.0.0.0") for _, ip in wide)
    assert reachable or not other
    # ...so the token is what keeps a client out: the same driver joins with it and is refused without it.
    assert with_token.startswith("JOINED"), with_token
    assert no_token.startswith("REFUSED"), no_token
