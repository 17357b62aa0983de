"""bench/train_gpu.py runs its CPU smoke path (--tiny) and writes a complete result file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_train_llm_bench_tiny_writes_results(tmp_path):
    out = tmp_path / "train_gpu.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_gpu.py"), "--tiny", "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(out.read_text())
    assert [r["packing"] for r in res["results"]] == [True, False]
    for r in res["results"]:
        assert r["tokens_per_s"] > 0 and 0 < r["mfu"] < 1
    # Packing removes (almost) all padding; per-example padding does not.
    assert res["results"][0]["pad_fraction"] < res["results"][1]["pad_fraction"]
    assert "MFU %" in proc.stdout
