"""LLM SFT end to end on Ray Train (2 CPU workers, tiny random model, real CoNLL-2003 sentences).

Slow: each fit takes ~1 min on the shared 2-core machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.corpora]

TINY_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train_llm_tiny.yaml"


@pytest.fixture(scope="module", autouse=True)
def _ray_session():
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _cfg(tmp_path: Path, wh: Path, model: Path, run: str, *extra: str):
    from b2ner_common.config import load_config

    return load_config(
        TINY_CONFIG,
        [
            f"warehouse={wh}",
            f"model.path={model}",
            f"train.output_dir={tmp_path / 'runs'}",
            f"train.run_name={run}",
            *extra,
        ],
    )


def _history(run_dir: Path, key: str) -> list[float]:
    import os

    from mlflow.tracking import MlflowClient

    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = MlflowClient(tracking_uri=(run_dir.parent / "mlruns").as_uri())
    run_id = (run_dir / "mlflow_run_id").read_text().strip()
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_train_llm_loss_falls_and_adapter_reloads_and_generates(tmp_path, sft_warehouse, tiny_llm_dir):
    from b2ner_common.config import ModelConfig
    from b2ner_common.models.llm.predictor import load_llm_predictor
    from ray_train.train_llm import train_llm

    cfg = _cfg(
        tmp_path,
        sft_warehouse,
        tiny_llm_dir,
        "fit",
        "train.max_steps=16",
        "train.report_every=4",
        "train.checkpoint_every=8",
    )
    summary = train_llm(cfg)
    assert summary["train_rows"] == 300
    assert summary["metrics"]["step"] == 16
    losses = _history(Path(summary["run_dir"]), "loss_avg")
    assert len(losses) == 4
    assert losses[-1] < losses[0] - 0.2, losses

    adapter = Path(summary["adapter"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    # Reload with peft on the base model and generate.
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llm_dir), adapter)
    enc = tok("Text: EU rejects German call . \nAnswer:", return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > enc["input_ids"].shape[1]
    # And through the predict stage's loader (adapter + base_model).
    pred = load_llm_predictor(
        ModelConfig(family="llm", path=str(adapter), base_model=str(tiny_llm_dir), max_new_tokens=16)
    )
    res = pred.predict(["Peter Blackburn visited Brussels ."], ["person", "location"])
    assert len(res) == 1


def test_train_llm_resumes_after_worker_crash(tmp_path, sft_warehouse, tiny_llm_dir, monkeypatch):
    from ray_train.train_llm import FAIL_ENV, train_llm

    marker = tmp_path / "killed"
    monkeypatch.setenv(FAIL_ENV, f"{marker}:6")  # the last worker dies once at step 6 (0-based)
    cfg = _cfg(
        tmp_path,
        sft_warehouse,
        tiny_llm_dir,
        "crash",
        "train.max_steps=8",
        "train.report_every=4",
        "train.checkpoint_every=4",
    )
    summary = train_llm(cfg)
    assert marker.is_file(), "the failure was injected"
    assert summary["metrics"]["step"] == 8
    assert summary["metrics"]["resumed_from"] == 4  # restarted from the step-4 checkpoint, not from 0


def test_train_llm_driver_restart_resumes_same_run(tmp_path, sft_warehouse, tiny_llm_dir):
    from b2ner_cli.main import main
    from ray_train.train_llm import train_llm

    first = train_llm(
        _cfg(tmp_path, sft_warehouse, tiny_llm_dir, "again", "train.max_steps=4", "train.checkpoint_every=4")
    )
    assert first["metrics"]["step"] == 4 and first["metrics"]["resumed_from"] == 0
    # A new driver (the CLI) with the same output_dir + run_name continues from the latest checkpoint.
    rc = main(
        [
            "train",
            "-c",
            str(TINY_CONFIG),
            f"warehouse={sft_warehouse}",
            f"model.path={tiny_llm_dir}",
            f"train.output_dir={tmp_path / 'runs'}",
            "train.run_name=again",
            "train.max_steps=8",
            "train.checkpoint_every=4",
        ]
    )
    assert rc == 0
    steps = _history(tmp_path / "runs" / "again", "step")
    resumed = _history(tmp_path / "runs" / "again", "resumed_from")
    assert steps[-1] == 8 and resumed[-1] == 4


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_train_llm_deepspeed_zero_trains_saves_full_adapter_and_resumes(
    tmp_path, sft_warehouse, tiny_llm_dir, stage
):
    """DeepSpeed on CPU (gloo): per-rank optimizer shards merge into one Ray checkpoint; ZeRO-3 gathers
    the partitioned LoRA weights before saving the adapter; a second launch resumes the run."""
    from safetensors.torch import load_file

    from ray_train.train_llm import train_llm

    extra = (f"train.llm.deepspeed={stage}", "train.checkpoint_every=4", "train.report_every=4")
    first = train_llm(_cfg(tmp_path, sft_warehouse, tiny_llm_dir, stage, "train.max_steps=4", *extra))
    assert first["metrics"]["step"] == 4
    sd = load_file(Path(first["adapter"]) / "adapter_model.safetensors")
    lora_b = [v for k, v in sd.items() if "lora_B" in k]
    assert len(lora_b) == 14 and all(v.numel() > 0 for v in lora_b)  # 7 modules x 2 layers, not empty shards
    assert any(float(v.abs().sum()) > 0 for v in lora_b)  # trained (B starts at zero)
    ckpt = Path(first["checkpoint"])
    assert len(list((ckpt / "ds").glob("*optim_states.pt"))) == 2  # both ranks' ZeRO partitions
    again = train_llm(_cfg(tmp_path, sft_warehouse, tiny_llm_dir, stage, "train.max_steps=6", *extra))
    assert again["metrics"]["step"] == 6 and again["metrics"]["resumed_from"] == 4
