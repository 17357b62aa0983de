"""`b2ner train`: fine-tune the configured model family on the selected data (Ray Train).

model.family=llm -> ray_train.train_llm (LoRA SFT, optional DeepSpeed ZeRO);
model.family=span-encoder -> ray_train.train_span_encoder.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from b2ner_cli.options import CONFIG_OPTION, OVERRIDES_ARG, UsageError, resolve_config
from b2ner_common.config import PipelineConfig

# family -> (module, function): imported lazily so `b2ner --help` never loads Ray or torch.
TRAINERS = {
    "llm": ("ray_train.train_llm", "train_llm"),
    "span-encoder": ("ray_train.train_span_encoder", "train_span_encoder"),
}


def run_train(cfg: PipelineConfig) -> dict[str, Any]:
    """Dispatch on `model.family`; raises UsageError when the family has no trainer installed."""
    family = cfg.model.family
    if family not in TRAINERS:
        raise UsageError(f"model.family={family!r} cannot be trained; trainable families: {sorted(TRAINERS)}")
    module, fn = TRAINERS[family]
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name != module:
            raise
        raise UsageError(
            f"model.family={family!r} needs {module}.py, which is not in this installation"
        ) from None
    if family == "llm" and not cfg.model.path:
        raise UsageError(
            "model.path is empty: set it to a local base model directory (config.json + weights)"
        )
    return getattr(mod, fn)(cfg)


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: str = CONFIG_OPTION,
        overrides: list[str] = OVERRIDES_ARG,
        family: str = typer.Option(None, "--family", help="model.family: llm | span-encoder"),
        run_name: str = typer.Option(
            None, "--run-name", help="train.run_name (same name + output_dir resumes)"
        ),
    ) -> None:
        """Train on gold/selection (joined with silver/samples); resumes a run of the same name."""
        cfg = resolve_config(config, overrides, **{"model.family": family, "train.run_name": run_name})
        console = Console(stderr=True)
        with console.status(
            f"training {cfg.model.family} run {cfg.train.run_name!r} on Ray "
            f"({cfg.train.num_workers} workers, gpu={cfg.train.use_gpu})"
        ):
            summary = run_train(cfg)
        table = Table(title=f"b2ner train: {cfg.model.family} run {cfg.train.run_name}")
        table.add_column("key")
        table.add_column("value")
        for k, v in summary.items():
            if k == "metrics":
                for mk, mv in sorted((v or {}).items()):
                    table.add_row(mk, f"{mv:.4g}" if isinstance(mv, float) else str(mv))
            else:
                table.add_row(k, str(v))
        Console().print(table)
