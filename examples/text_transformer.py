"""Critical pathways of a text transformer: explain a token's logit, attribute to the embeddings.

A small GPT-style language model built from ``torch.nn.TransformerEncoder`` (causal mask, GELU
MLPs) predicts the next token. We explain the logit of the predicted token at the last position:

- the *neurons* are the elements of the MLP activations (every GELU call, one per layer); the
  attention softmax and the LayerNorms are not neurons (they normalise over a row, they are not
  elementwise activations) and are never masked;
- the *input* is the output of the embedding layer, as Captum's ``LayerIntegratedGradients``
  attributes to ``model.embed``: the pathway gradient is shaped like the embeddings (B, T, D);
- a token's score is the sum over the embedding dimension D (of the map, or of map x embedding,
  the "input x gradient" form that Captum's tutorials sum).

By default the model first learns a toy task for a few seconds (the next token at the end of a
sequence is its first token), so the explanation has something to find: the first token should get
the largest score. ``python examples/text_transformer.py --steps 0`` explains random weights.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from torch import nn

import pathwaygrad as pg

VOCAB, DIM, HEADS, LAYERS, LENGTH = 64, 32, 4, 2, 12


class TinyLM(nn.Module):
    """Token ids (B, T) -> next-token logits at the last position (B, VOCAB)."""

    def __init__(
        self, vocab: int = VOCAB, dim: int = DIM, heads: int = HEADS, layers: int = LAYERS
    ):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(LENGTH, dim) * 0.1)
        layer = nn.TransformerEncoderLayer(
            dim, heads, 4 * dim, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def from_embeddings(self, emb: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, T, D) -> next-token logits (B, VOCAB) at the last position."""
        t = emb.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=emb.device)
        h = self.encoder(emb + self.pos[:t], mask=mask, is_causal=True)
        return self.head(self.norm(h[:, -1]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.from_embeddings(self.embed(ids))


class FromEmbeddings(nn.Module):
    """The model with its embedding output as the input: what pathways attribute to."""

    def __init__(self, lm: TinyLM):
        super().__init__()
        self.lm = lm
        self.train(lm.training)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.lm.from_embeddings(emb)


def toy_batch(n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random sequences; the next token is the sequence's first token."""
    ids = torch.randint(0, VOCAB, (n, LENGTH), generator=gen)
    return ids, ids[:, 0].clone()


def train(model: TinyLM, steps: int, seed: int = 0) -> float:
    """Fit the toy task; return the accuracy on fresh sequences."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        ids, nxt = toy_batch(64, gen)
        loss = F.cross_entropy(model(ids), nxt)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ids, nxt = toy_batch(512, gen)
    with torch.no_grad():
        return float((model(ids).argmax(1) == nxt).float().mean())


def explain_tokens(model: TinyLM, ids: torch.Tensor, sparsity: float = 90.0) -> dict:
    """Per-token scores of the predicted next token's logit: pathway gradient and baselines.

    Returns the pathway and, per method, (B, T) token scores = sum over the embedding dimension
    of map x embedding.
    """
    emb = model.embed(ids).detach()
    net = FromEmbeddings(model)
    pathway = pg.select_pathway(net, emb, None, "neuron_mct", sparsity=sparsity)
    maps = {
        "neuron_mct": pg.pathway_gradient(net, emb, pathway),
        "gradient": pg.explain(net, emb, "gradient", pathway.targets),
    }
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(model, model.embed)
    # baseline: token id 0 everywhere; the result is already x (emb - baseline emb)
    ig = lig.attribute(ids, target=pathway.targets, n_steps=32)
    scores = {name: (m * emb).sum(-1) for name, m in maps.items()}
    scores["layer_integrated_gradients"] = ig.sum(-1)
    return {"pathway": pathway, "maps": maps, "scores": scores}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=150, help="training steps on the toy task")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (the model is tiny)")
    p.add_argument("--sparsity", type=float, default=90.0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = TinyLM()
    if args.steps:
        t0 = time.perf_counter()
        acc = train(model, args.steps)
        print(f"trained {args.steps} steps in {time.perf_counter() - t0:.1f} s: accuracy {acc:.0%}")
    model.eval()
    ids, _ = toy_batch(4, torch.Generator().manual_seed(1))
    out = explain_tokens(model, ids, args.sparsity)
    pathway = out["pathway"]
    print(f"pathway over {len(pathway.sites)} GELU calls: {', '.join(pathway.sites)}")
    print(f"real sparsity: {', '.join(f'{s:.2f}' for s in pathway.sparsity.tolist())} %")
    for name, s in out["scores"].items():
        top = s.abs().argmax(1).tolist()
        print(f"{name:28s} most important position per sequence: {top}")
    return out


if __name__ == "__main__":
    main()
