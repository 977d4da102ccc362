"""A small decoder-only transformer for characters, trainable one model or a whole population.

Pre-norm blocks (layer norm, causal self-attention, layer norm, GELU MLP), learned positions,
an untied output layer: nanoGPT's model at toy size. ``forward`` is the plain model;
``population_forward`` runs many members' stacked parameters (``torch.func.stack_module_state``)
in one pass: linear layers as batched matrix products and attention with the member dimension
folded into the batch of one ``F.scaled_dot_product_attention`` call. ``vmap`` over this model
falls back to a per-member loop (no CPU batching rule for attention), which is slower than
training the members one after another; this path is not.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """One pre-norm transformer block."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.up = nn.Linear(width, 4 * width)
        self.down = nn.Linear(4 * width, width)


class CharTransformer(nn.Module):
    """Characters in (batch, T), next-character logits out (batch, T, vocabulary)."""

    def __init__(self, vocabulary: int, context: int, width: int, layers: int, heads: int) -> None:
        super().__init__()
        self.context = context
        self.embed = nn.Embedding(vocabulary, width)
        self.position = nn.Embedding(context, width)
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, vocabulary)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """The model alone: the reference that ``population_forward`` must match per member."""
        x = self.embed(tokens) + self.position.weight[: tokens.shape[-1]]
        for block in self.blocks:
            q, k, v = block.qkv(block.norm1(x)).chunk(3, dim=-1)
            x = x + block.out(_attention(q, k, v, block.heads))
            x = x + block.down(F.gelu(block.up(block.norm2(x))))
        return self.head(self.norm(x))

    def population_forward(
        self, params: dict[str, torch.Tensor], tokens: torch.Tensor, *, shared: bool
    ) -> torch.Tensor:
        """Every member's logits (members, batch, T, vocabulary) from stacked ``params``.

        ``tokens`` is (members, batch, T), each member's own batch, or with ``shared`` one
        (batch, T) batch every member sees."""
        members, vocabulary = params["embed.weight"].shape[:2]
        if shared:
            tokens = tokens.expand(members, *tokens.shape)
        offsets = torch.arange(members, device=tokens.device).view(-1, 1, 1) * vocabulary
        x = F.embedding(tokens + offsets, params["embed.weight"].flatten(0, 1))  # one table for all members
        x = x + params["position.weight"][:, None, : tokens.shape[-1]]
        for i, block in enumerate(self.blocks):
            p = lambda name, i=i: params[f"blocks.{i}.{name}"]
            q, k, v = _linear(
                _norm(x, p("norm1.weight"), p("norm1.bias")), p("qkv.weight"), p("qkv.bias")
            ).chunk(3, dim=-1)
            attended = _attention(*(t.flatten(0, 1) for t in (q, k, v)), block.heads).unflatten(
                0, x.shape[:2]
            )
            x = x + _linear(attended, p("out.weight"), p("out.bias"))
            hidden = F.gelu(
                _linear(_norm(x, p("norm2.weight"), p("norm2.bias")), p("up.weight"), p("up.bias"))
            )
            x = x + _linear(hidden, p("down.weight"), p("down.bias"))
        x = _norm(x, params["norm.weight"], params["norm.bias"])
        return _linear(x, params["head.weight"], params["head.bias"])


def _attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """Causal multi-head self-attention of (batch, T, width) projections, heads split and merged."""
    split = lambda t: t.unflatten(-1, (heads, -1)).transpose(1, 2)  # (batch, heads, T, head width)
    attended = F.scaled_dot_product_attention(split(q), split(k), split(v), is_causal=True)
    return attended.transpose(1, 2).flatten(-2)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Each member's linear layer: x (members, ..., in), weight (members, out, in)."""
    flat = x.flatten(1, -2)
    return torch.baddbmm(bias.unsqueeze(1), flat, weight.mT).unflatten(1, x.shape[1:-1])


def _norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Each member's layer norm over the last dimension: x (members, ..., width)."""
    shape = (len(weight),) + (1,) * (x.dim() - 2) + (-1,)
    return torch.addcmul(bias.view(shape), F.layer_norm(x, x.shape[-1:]), weight.view(shape))
