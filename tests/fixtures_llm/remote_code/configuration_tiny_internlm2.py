"""Config of a tiny custom-code causal LM shaped like InternLM2 (fused `wqkv`), for offline tests.

Copied into a model directory next to its weights and named in config.json's `auto_map`, the way
InternLM2 ships its own code: transformers runs it only with trust_remote_code=True.
"""

from transformers import PretrainedConfig


class TinyInternLM2Config(PretrainedConfig):
    model_type = "internlm2"

    def __init__(
        self,
        vocab_size: int = 400,
        hidden_size: int = 64,
        intermediate_size: int = 128,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 4,
        rope_theta: float = 10000.0,
        **kwargs,
    ):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.rope_theta = rope_theta
        super().__init__(**kwargs)
