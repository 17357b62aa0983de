"""bench/train_gpu.py: MFU definitions (spec peak, no input-embedding FLOPs) and its CPU smoke paths."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))


def test_train_llm_bench_spec_peaks_by_device_name():
    from train_gpu import spec_peak_flops

    assert spec_peak_flops("NVIDIA H100 80GB HBM3") == pytest.approx(989.4e12)
    assert spec_peak_flops("NVIDIA H100 PCIe") == pytest.approx(756e12)
    assert spec_peak_flops("NVIDIA H200") == pytest.approx(989.4e12)
    assert spec_peak_flops("NVIDIA H200 NVL") == pytest.approx(835e12)
    assert spec_peak_flops("NVIDIA A100-SXM4-80GB") == pytest.approx(312e12)
    assert spec_peak_flops("NVIDIA L4") is None
    assert spec_peak_flops("NVIDIA L4", 121.0) == pytest.approx(121e12)


@pytest.mark.parametrize("tied", [False, True])
def test_train_llm_bench_input_embedding_is_not_counted(tied):
    from train_gpu import matmul_params
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=1000,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        tie_word_embeddings=tied,
    )
    model = LlamaForCausalLM(cfg)
    for p in model.parameters():
        p.requires_grad_(False)
    n_frozen, n_lora = matmul_params(model)
    total = sum(p.numel() for p in model.parameters())  # a tied weight is one parameter
    assert n_lora == 0
    assert n_frozen == (total if tied else total - 1000 * 32)


def _run(args: list[str], out: Path) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_gpu.py"), *args, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


@pytest.mark.slow
def test_train_llm_bench_tiny_writes_results(tmp_path):
    res, stdout = _run(["--tiny"], tmp_path / "train_gpu.json")
    assert [r["packing"] for r in res["results"]] == [True, False]
    assert res["meta"]["peak_flops_spec"] is None  # CPU: no spec peak, so no standard MFU
    for r in res["results"]:
        assert r["tokens_per_s"] > 0 and r["mfu"] is None and 0 < r["mfu_vs_measured_peak"] < 1
    # Packing removes (almost) all padding; per-example padding does not.
    assert res["results"][0]["pad_fraction"] < res["results"][1]["pad_fraction"]
    assert "MFU %" in stdout and "MFU/meas %" in stdout


@pytest.mark.slow
def test_train_llm_bench_tiny_times_the_real_train_path(tmp_path):
    res, stdout = _run(["--tiny", "--mode", "train"], tmp_path / "train_path.json")
    assert res["meta"]["mode"].startswith("train (b2ner train")
    assert [r["packing"] for r in res["results"]] == [True, False]
    assert all(r["tokens_per_s"] > 0 for r in res["results"]) and res["meta"]["flops_per_token"] > 0
