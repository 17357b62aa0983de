"""A tiny decoder with InternLM2's module names (`attention.wqkv`, `attention.wo`, `feed_forward.w1/w2/w3`).

Like InternLM2's own code it builds its attention mask from `attention_mask` only (causal + padding), so
packed rows with restarting `position_ids` are NOT separated: the packing check must refuse it. No KV cache:
generation recomputes the whole prefix (tiny models only).
"""

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_tiny_internlm2 import TinyInternLM2Config


def _rotate(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    half = x.shape[-1] // 2
    inv = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = pos[:, None, :, None].float() * inv  # (batch, 1, time, half)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps).to(x.dtype)


class Attention(nn.Module):
    def __init__(self, cfg: TinyInternLM2Config):
        super().__init__()
        self.heads, self.theta = cfg.num_attention_heads, cfg.rope_theta
        self.wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size, bias=False)
        self.wo = nn.Linear(cfg.hidden_size, cfg.hidden_size, bias=False)

    def forward(self, x, pos, mask):
        b, t, d = x.shape
        q, k, v = self.wqkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k = _rotate(q, pos, self.theta), _rotate(k, pos, self.theta)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.wo(out.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, cfg: TinyInternLM2Config):
        super().__init__()
        self.attention_norm, self.ffn_norm = RMSNorm(cfg.hidden_size), RMSNorm(cfg.hidden_size)
        self.attention = Attention(cfg)
        self.feed_forward = nn.ModuleDict(
            {
                "w1": nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False),
                "w3": nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False),
                "w2": nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False),
            }
        )

    def forward(self, x, pos, mask):
        x = x + self.attention(self.attention_norm(x), pos, mask)
        h = self.ffn_norm(x)
        ff = self.feed_forward
        return x + ff["w2"](F.silu(ff["w1"](h)) * ff["w3"](h))


class TinyInternLM2ForCausalLM(PreTrainedModel, GenerationMixin):
    config_class = TinyInternLM2Config
    base_model_prefix = "model"
    _no_split_modules = ["Block"]

    def __init__(self, cfg: TinyInternLM2Config):
        super().__init__(cfg)
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size)
        self.output = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def get_input_embeddings(self):
        return self.tok_embeddings

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        return {"input_ids": input_ids, "attention_mask": attention_mask}

    def forward(self, input_ids, attention_mask=None, position_ids=None, labels=None, **kwargs):
        b, t = input_ids.shape
        keep = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        if position_ids is None:
            position_ids = (keep.cumsum(-1) - 1).clamp(min=0)
        causal = torch.ones(t, t, dtype=torch.bool, device=input_ids.device).tril()
        mask = causal[None, None] & keep[:, None, None, :].bool()
        mask = mask | torch.eye(t, dtype=torch.bool, device=input_ids.device)  # pad rows stay finite
        x = self.tok_embeddings(input_ids)
        for layer in self.layers:
            x = layer(x, position_ids, mask)
        logits = self.output(self.norm(x))
        return CausalLMOutputWithPast(logits=logits)
