#!/usr/bin/env python3
"""The PyTorch peer of dsflow's training step, for issue 7's benchmark.

Trains the model of a dsflow ModelSpec (the protobuf text that
`dsflow-compile MODEL --emit=spec` prints) with a performance-minded PyTorch
implementation of the same architecture, and measures tokens/s and MFU:

  MLA attention (one fused down-projection for the query and the compressed
  key/value, RMSNorms, interleaved RoPE, F.scaled_dot_product_attention with
  is_causal), RMSNorm, dense SwiGLU FFNs, DeepSeekMoE (sigmoid or softmax
  scores, group-limited top-k on scores + bias, the bias without gradient,
  top-k normalization and route scale, shared experts; the routed experts run
  on tokens sorted by expert: torch._grouped_mm over groups padded to 16 rows
  for BF16 on a GPU, else one SwiGLU per expert on its contiguous rows), MTP
  modules, loss = LM + mtp_loss_weight * mean MTP + the sequence-wise balance
  loss (alpha > 0). The expert weights of a layer are stacked ([E, 2F, H] gate
  and up, [E, H, F] down): the same parameters as the Hugging Face names, laid
  out for grouped GEMMs.

Training as dsflow's defaults (dsflow-compile's flags): AdamW lr 1e-3 with
linear warmup over 100 steps then cosine to 1e-4 at step 2000, betas (0.9,
0.95), eps 1e-8, weight decay 0.1 on tensors of two or more dimensions, global
gradient-norm clip 1.0, the router-bias update bias += 0.001 * sign(mean load -
load) after every step, MTP weight 0.3, balance-loss alpha 1e-4; parameters
N(0, 0.02) (norm weights 1, biases 0), as dsflow-run's --init-std.

--dtype fp32 computes in FP32 without TF32; --dtype bf16 is autocast to BF16
with FP32 master weights (the router, norms, softmax and losses stay FP32).
Timing: CUDA events around each step after --warmup steps (wall clock on the
CPU); tokens/s = micro_batch * seq_len / the median step time.
MFU = flops_per_token * tokens/s / (--peak-tflops * 1e12), where
flops_per_token = 6 * (matmul weights applied per token: every projection, the
shared experts, k of E routed experts, the router, the output head once per
prediction depth and the MTP projections; not the embedding lookup or the
norms) + the attention's matmuls (QK^T and PV, 3x the forward, causal: a
token attends to (S+1)/2 positions on average). `mfu_6n` leaves the attention
out. Prints one JSON line (and writes it to --json FILE).

--check: one forward and backward in float64 on the CPU, from the same small
random parameters (Hugging Face names), with this model and with
test/reference/deepseek_reference.py's independent implementation: the losses
and every parameter's gradient must agree to 1e-10 (relative), the expert
loads exactly; with --dsflow-compile, the parameter counts must equal
dsflow-compile --emit=summary's. With --device cuda also FP32 (1e-4) and BF16
(loss, 2e-2) on the GPU, compiled too with --compile. Exit 1 on a failure, 77
when torch cannot be imported.

  bench/cuda/torch_peer.py --spec medium.spec --seq-len 512 --micro-batch 16 \\
      --dtype bf16 --compile --device cuda --data models/tinyshakespeare.txt
  /usr/bin/python3 bench/cuda/torch_peer.py --check --spec models/tiny-v3.pbtxt \\
      --dsflow-compile build/bin/dsflow-compile
"""

import argparse
import contextlib
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # pragma: no cover - depends on the machine
    print("SKIP: this python cannot import torch")
    sys.exit(77)

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "reference"))
import deepseek_reference as ref  # noqa: E402

# dsflow-compile's defaults (tools/dsflow-compile) and dsflow-run's --init-std.
DSFLOW_DEFAULTS = {"lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100,
                   "total_steps": 2000, "betas": (0.9, 0.95), "eps": 1e-8,
                   "weight_decay": 0.1, "grad_clip": 1.0,
                   "bias_update_speed": 1e-3, "mtp_loss_weight": 0.3,
                   "balance_loss_alpha": 1e-4, "init_std": 0.02}
ALIGN = 16  # rows per expert group for torch._grouped_mm (16-byte aligned)


def fail(message, code=2):
    print(f"torch_peer.py: error: {message}", file=sys.stderr)
    sys.exit(code)


def wide(dtype):
    """FP32, or the dtype if wider (the float64 check stays float64)."""
    return torch.promote_types(dtype, torch.float32)


def rms_norm(x, weight, eps):
    xf = x.to(wide(x.dtype))
    return xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight


def rope(x, cos, sin):
    """x [B, S, n, d]: rotates the interleaved pairs (x[2i], x[2i+1]) at
    position s by s * freq[i]; cos, sin [S, d/2]."""
    cos = cos.to(x.dtype)[None, :, None, :]
    sin = sin.to(x.dtype)[None, :, None, :]
    pairs = x.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


def swiglu(x, w13, w2):
    """w13 = [gate; up] stacked on the output dimension."""
    g, u = F.linear(x, w13).chunk(2, -1)
    return F.linear(F.silu(g) * u, w2)


def has_grouped_mm():
    return hasattr(torch, "_grouped_mm")


def has_sdpa():
    return hasattr(F, "scaled_dot_product_attention")


def grouped_mm_loop(a, b, offs):
    """torch._grouped_mm's 2D x 3D case, one GEMM per group: out[s:e] =
    a[s:e] @ b[g] with e = offs[g] (--check's stand-in where torch has none)."""
    outs, start = [], 0
    for g, end in enumerate(offs.tolist()):
        outs.append(a[start:end] @ b[g])
        start = end
    return torch.cat(outs)


# --------------------------------------------------------------------------
# The model: parameters, and the blocks (pure functions of tensors, so that
# torch.compile builds one graph per block shape, shared by the layers)
# --------------------------------------------------------------------------

class Layer(torch.nn.Module):
    """One decoder layer's parameters (an MTP module's with mtp=True)."""

    def __init__(self, cfg, index, mtp):
        super().__init__()
        c = cfg
        P = lambda *shape: torch.nn.Parameter(torch.empty(*shape))
        self.index = index
        self.is_moe = c.is_moe_layer(index)
        self.is_mtp = mtp
        H = c.hidden
        self.q_out = c.q_lora_rank if c.q_lora_rank > 0 else c.heads * (c.nope + c.rope_dim)
        self.input_norm = P(H)
        self.post_norm = P(H)
        # [q_a_proj or q_proj; kv_a_proj_with_mqa]: both read the normed input.
        self.w_a = P(self.q_out + c.kv_lora_rank + c.rope_dim, H)
        if c.q_lora_rank > 0:
            self.q_a_norm = P(c.q_lora_rank)
            self.q_b = P(c.heads * (c.nope + c.rope_dim), c.q_lora_rank)
        else:
            self.q_a_norm = self.q_b = None
        self.kv_a_norm = P(c.kv_lora_rank)
        self.kv_b = P(c.heads * (c.nope + c.v_dim), c.kv_lora_rank)
        self.o_proj = P(H, c.heads * c.v_dim)
        if self.is_moe:
            self.gate = P(c.experts, H)
            self.register_buffer("bias", torch.zeros(c.experts))
            self.w13 = P(c.experts, 2 * c.expert_ffn, H)
            self.w2 = P(c.experts, H, c.expert_ffn)
            if c.shared > 0:
                self.sw13 = P(2 * c.shared * c.expert_ffn, H)
                self.sw2 = P(H, c.shared * c.expert_ffn)
            else:
                self.sw13 = self.sw2 = None
        else:
            self.w13 = P(2 * c.dense_ffn, H)
            self.w2 = P(H, c.dense_ffn)
        if mtp:
            self.enorm = P(H)
            self.hnorm = P(H)
            self.eh_proj = P(H, 2 * H)
            self.head_norm = P(H)

    def attn_params(self):
        return (self.w_a, self.q_a_norm, self.q_b, self.kv_a_norm, self.kv_b,
                self.o_proj)

    def hf_names(self, cfg):
        """(Hugging Face name, attribute, slice of it) for every parameter."""
        c, p = cfg, f"model.layers.{self.index}."
        a, m = p + "self_attn.", p + "mlp."
        whole = slice(None)
        out = [(p + "input_layernorm.weight", "input_norm", whole),
               (p + "post_attention_layernorm.weight", "post_norm", whole)]
        if c.q_lora_rank > 0:
            out += [(a + "q_a_proj.weight", "w_a", slice(0, self.q_out)),
                    (a + "q_a_layernorm.weight", "q_a_norm", whole),
                    (a + "q_b_proj.weight", "q_b", whole)]
        else:
            out.append((a + "q_proj.weight", "w_a", slice(0, self.q_out)))
        out += [(a + "kv_a_proj_with_mqa.weight", "w_a", slice(self.q_out, None)),
                (a + "kv_a_layernorm.weight", "kv_a_norm", whole),
                (a + "kv_b_proj.weight", "kv_b", whole),
                (a + "o_proj.weight", "o_proj", whole)]
        if self.is_moe:
            f = c.expert_ffn
            out += [(m + "gate.weight", "gate", whole),
                    (m + "gate.e_score_correction_bias", "bias", whole)]
            for e in range(c.experts):
                ep = f"{m}experts.{e}."
                out += [(ep + "gate_proj.weight", "w13", (e, slice(0, f))),
                        (ep + "up_proj.weight", "w13", (e, slice(f, None))),
                        (ep + "down_proj.weight", "w2", e)]
            if c.shared > 0:
                sf = c.shared * f
                sp = m + "shared_experts."
                out += [(sp + "gate_proj.weight", "sw13", slice(0, sf)),
                        (sp + "up_proj.weight", "sw13", slice(sf, None)),
                        (sp + "down_proj.weight", "sw2", whole)]
        else:
            f = c.dense_ffn
            out += [(m + "gate_proj.weight", "w13", slice(0, f)),
                    (m + "up_proj.weight", "w13", slice(f, None)),
                    (m + "down_proj.weight", "w2", whole)]
        if self.is_mtp:
            out += [(p + "enorm.weight", "enorm", whole),
                    (p + "hnorm.weight", "hnorm", whole),
                    (p + "eh_proj.weight", "eh_proj", whole),
                    (p + "shared_head.norm.weight", "head_norm", whole)]
        return out


class Blocks:
    """The computation, as functions of tensors (torch.compile'd one by one
    with --compile: the layers of one kind share a graph)."""

    def __init__(self, cfg, attention, balance_alpha, bf16, grouped_mm):
        self.c = cfg
        self.grouped_mm = grouped_mm
        self.sdpa = attention == "sdpa"
        self.alpha = balance_alpha
        self.scale = ref.softmax_scale(cfg)
        # SDPA's default scale unless YaRN changes it (no `scale` before 2.1).
        default = 1.0 / math.sqrt(cfg.nope + cfg.rope_dim)
        self.sdpa_kwargs = {} if abs(self.scale - default) <= 1e-12 * default \
            else {"scale": self.scale}
        # Under autocast: the router's GEMM in FP32 (autocast off around it),
        # the grouped GEMMs in BF16 (autocast does not cover them).
        self.bf16 = bf16

    def attention(self, x, cos, sin, w_a, q_a_norm, q_b, kv_a_norm, kv_b, o_proj):
        c = self.c
        B, S, _ = x.shape
        q_out = w_a.shape[0] - c.kv_lora_rank - c.rope_dim
        q, latent, k_pe = F.linear(x, w_a).split([q_out, c.kv_lora_rank, c.rope_dim], -1)
        if q_b is not None:
            q = F.linear(rms_norm(q, q_a_norm, c.eps), q_b)
        q = q.view(B, S, c.heads, c.nope + c.rope_dim)
        q_nope, q_pe = q.split([c.nope, c.rope_dim], -1)
        q_pe = rope(q_pe, cos, sin)
        k_pe = rope(k_pe.reshape(B, S, 1, c.rope_dim), cos, sin)
        kv = F.linear(rms_norm(latent, kv_a_norm, c.eps), kv_b)
        k_nope, v = kv.view(B, S, c.heads, c.nope + c.v_dim).split([c.nope, c.v_dim], -1)
        query = torch.cat([q_nope, q_pe.to(q_nope.dtype)], -1).transpose(1, 2)
        key = torch.cat([k_nope, k_pe.to(k_nope.dtype).expand(B, S, c.heads, c.rope_dim)],
                        -1).transpose(1, 2)
        value = v.transpose(1, 2)
        if self.sdpa:
            out = F.scaled_dot_product_attention(query, key, value, is_causal=True,
                                                 **self.sdpa_kwargs)
        else:
            scores = torch.matmul(query, key.transpose(-1, -2)) * self.scale
            causal = torch.ones(S, S, dtype=torch.bool, device=x.device).triu(1)
            probs = torch.softmax(scores.masked_fill(causal, float("-inf")), dim=-1)
            out = torch.matmul(probs, value)
        out = out.transpose(1, 2).reshape(B, S, c.heads * c.v_dim)
        return F.linear(out, o_proj)

    def dense_layer(self, h, cos, sin, attn, in_norm, post_norm, w13, w2):
        eps = self.c.eps
        h = h + self.attention(rms_norm(h, in_norm, eps), cos, sin, *attn)
        return h + swiglu(rms_norm(h, post_norm, eps), w13, w2)

    def route(self, x, gate, bias):
        """(weights [T, k], indices [T, k], scores [T, E]) as DeepSeek-V3's
        gate: top-k of scores + bias within the best groups."""
        c = self.c
        if self.bf16:
            with torch.autocast(device_type=x.device.type, enabled=False):
                logits = F.linear(x.to(gate.dtype), gate)
        else:
            logits = F.linear(x.to(gate.dtype), gate)
        scores = ref.router_scores(logits, c.score_function)
        T, E = scores.shape
        biased = scores.detach() + bias.to(scores.dtype)
        if c.groups > 1 and c.groups_per_token < c.groups:
            grouped = biased.view(T, c.groups, E // c.groups)
            if c.score_function == "SIGMOID":
                group_scores = grouped.topk(min(2, E // c.groups), dim=-1)[0].sum(-1)
            else:
                group_scores = grouped.amax(-1)
            kept = group_scores.topk(c.groups_per_token, dim=-1)[1]
            keep = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, kept, True)
            biased = grouped.masked_fill(~keep.unsqueeze(-1), float("-inf")).view(T, E)
        indices = biased.topk(c.top_k, dim=-1)[1]
        weights = scores.gather(1, indices)
        if c.normalize_topk:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return weights * c.route_scale, indices, scores

    def balance_loss(self, scores, indices, sequences):
        """alpha * mean over sequences of sum_i f_i P_i (DeepSeek-V3 eq. 17-20)."""
        c = self.c
        T, E = scores.shape
        S = T // sequences
        chosen = indices.reshape(sequences, S * c.top_k)
        counts = torch.zeros(sequences, E, dtype=scores.dtype, device=scores.device)
        counts = counts.scatter_add(1, chosen, torch.ones_like(chosen, dtype=scores.dtype))
        f = counts * (E / (c.top_k * S))
        P = (scores / scores.sum(-1, keepdim=True)).view(sequences, S, E).mean(1)
        return self.alpha * (f * P).sum(-1).mean()

    def moe_pre(self, h, cos, sin, attn, in_norm, post_norm, gate, bias):
        """Attention, the router, the expert loads and the sort by expert."""
        c = self.c
        h = h + self.attention(rms_norm(h, in_norm, c.eps), cos, sin, *attn)
        x = rms_norm(h, post_norm, c.eps)
        B, S, H = x.shape
        flat = x.reshape(B * S, H)
        weights, indices, scores = self.route(flat, gate, bias)
        if self.alpha > 0:
            balance = self.balance_loss(scores, indices, B)
        else:
            balance = torch.zeros((), dtype=scores.dtype, device=scores.device)
        slots = indices.reshape(-1)  # slot t*k + j: token t's j-th expert
        loads = torch.zeros(c.experts, dtype=torch.int64, device=x.device)
        loads = loads.scatter_add(0, slots, torch.ones_like(slots))
        order = torch.sort(slots, stable=True)[1]  # slots by expert
        return h, flat, weights, slots, order, loads, balance

    def experts_grouped(self, flat, slots, order, loads, w13, w2):
        """Routed experts through torch._grouped_mm: rows sorted by expert,
        each expert's group padded with zero rows to a multiple of ALIGN, and
        to ALIGN rows when it has none (no empty group: the weight gradient of
        one is exactly zero, whatever the kernel does with empty groups); the
        slack of the static size goes to the last group. Returns [T * k, H]
        in slot order."""
        TK, (E, _, H) = slots.shape[0], w2.shape
        k = TK // flat.shape[0]
        padded = ((loads + ALIGN - 1) // ALIGN * ALIGN).clamp(min=ALIGN)
        ends = padded.cumsum(0)
        starts = ends - padded
        first = loads.cumsum(0) - loads
        expert = slots[order]
        rows = starts[expert] + torch.arange(TK, device=flat.device) - first[expert]
        row_of_slot = torch.empty_like(rows).scatter_(0, order, rows)
        M = (TK + E * ALIGN + ALIGN - 1) // ALIGN * ALIGN  # >= padded.sum()
        offs = torch.cat([ends[:-1], ends.new_full((1,), M)]).to(torch.int32)
        dtype = torch.bfloat16 if self.bf16 else flat.dtype
        x = flat.to(dtype).repeat_interleave(k, 0)
        xp = x.new_zeros(M, x.shape[1]).index_copy(0, row_of_slot, x)
        g, u = self.grouped_mm(xp, w13.to(dtype).transpose(-2, -1), offs=offs).chunk(2, -1)
        yp = self.grouped_mm(F.silu(g) * u, w2.to(dtype).transpose(-2, -1), offs=offs)
        return yp[row_of_slot]

    def moe_post(self, h, flat, y, weights, sw13, sw2):
        """Combine ([T * k, H] in slot order), shared experts, residual."""
        T, k = weights.shape
        out = (y.view(T, k, -1) * weights.unsqueeze(-1)).sum(1)
        if sw13 is not None:
            out = out + swiglu(flat, sw13, sw2)
        return h + out.view_as(h)

    def moe_layer_grouped(self, h, cos, sin, attn, in_norm, post_norm, gate, bias,
                          w13, w2, sw13, sw2):
        h, flat, weights, slots, order, loads, balance = self.moe_pre(
            h, cos, sin, attn, in_norm, post_norm, gate, bias)
        y = self.experts_grouped(flat, slots, order, loads, w13, w2)
        return self.moe_post(h, flat, y, weights, sw13, sw2), loads, balance

    def sort_rows(self, flat, order, k):
        return flat[order // k]

    def unsort_rows(self, y_sorted, order):
        return y_sorted.new_empty(y_sorted.shape).index_copy(0, order, y_sorted)

    def head_loss(self, h, norm, head, targets):
        logits = F.linear(rms_norm(h, norm, self.c.eps), head)
        return F.cross_entropy(logits.to(wide(logits.dtype)).flatten(0, 1),
                               targets.flatten())

    def mtp_in(self, h, e, enorm, hnorm, eh_proj):
        eps = self.c.eps
        return F.linear(torch.cat([rms_norm(e, enorm, eps), rms_norm(h, hnorm, eps)], -1),
                        eh_proj)


def experts_loop(x_sorted, loads, w13, w2):
    """Routed experts one by one on their contiguous rows (eager: the row
    counts come to the host). Returns [T * k, H] sorted by expert."""
    sizes = loads.tolist()
    w13s, w2s = w13.unbind(0), w2.unbind(0)  # one gradient tensor, not E
    outs = [swiglu(rows, w13s[e], w2s[e])
            for e, rows in enumerate(x_sorted.split(sizes)) if sizes[e] > 0]
    return torch.cat(outs)


class PeerModel(torch.nn.Module):
    def __init__(self, cfg, seq_len, attention="auto", experts="auto",
                 mtp_loss_weight=DSFLOW_DEFAULTS["mtp_loss_weight"],
                 balance_loss_alpha=DSFLOW_DEFAULTS["balance_loss_alpha"],
                 grouped_mm=None):
        super().__init__()
        c = self.cfg = cfg
        self.mtp_loss_weight = mtp_loss_weight
        self.balance_loss_alpha = balance_loss_alpha
        if attention == "auto":
            attention = "sdpa" if has_sdpa() else "math"
        if attention == "sdpa" and not has_sdpa():
            fail(f"--attention sdpa needs F.scaled_dot_product_attention "
                 f"(PyTorch 2.0+; this is {torch.__version__})")
        self.grouped_mm = grouped_mm or getattr(torch, "_grouped_mm", None)
        if experts == "grouped" and self.grouped_mm is None:
            fail(f"--experts grouped needs torch._grouped_mm (PyTorch 2.8+; "
                 f"this is {torch.__version__})")
        self.attention = attention
        self.experts = experts  # "auto" is decided per dtype and device
        self.embed = torch.nn.Parameter(torch.empty(c.vocab, c.hidden))
        self.norm = torch.nn.Parameter(torch.empty(c.hidden))
        self.head = None if c.tie_embeddings else torch.nn.Parameter(
            torch.empty(c.vocab, c.hidden))
        self.layers = torch.nn.ModuleList(
            [Layer(c, i, i >= c.num_layers) for i in range(c.num_layers + c.mtp_depth)])
        freqs = ref.rope_frequencies(c)
        angles = torch.outer(torch.arange(seq_len, dtype=torch.float64), freqs)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)
        self.fns = None

    def moe_layers(self):
        return [l for l in self.layers if l.is_moe]

    def setup(self, dtype, compile_mode=None):
        """Picks the code paths for this dtype and device and, with
        compile_mode, torch.compile's each block."""
        device = self.embed.device
        experts = self.experts
        if experts == "auto":
            experts = ("grouped" if has_grouped_mm() and dtype == "bf16"
                       and device.type == "cuda"
                       and torch.cuda.get_device_capability(device) >= (9, 0)
                       else "loop")
        self.experts_used = experts
        blocks = Blocks(self.cfg, self.attention, self.balance_loss_alpha,
                        bf16=dtype == "bf16", grouped_mm=self.grouped_mm)
        # RoPE tables in FP32 (float64 for a float64 model).
        self.cos = self.cos.to(wide(self.embed.dtype))
        self.sin = self.sin.to(wide(self.embed.dtype))
        names = ["dense_layer", "moe_pre", "moe_post", "moe_layer_grouped",
                 "sort_rows", "unsort_rows", "head_loss", "mtp_in"]
        fns = {n: getattr(blocks, n) for n in names}
        if compile_mode is not None:
            kwargs = {"dynamic": False}
            if compile_mode != "default":
                kwargs["mode"] = compile_mode
            fns = {n: torch.compile(f, **kwargs) for n, f in fns.items()}
        self.fns = fns

    def layer(self, l, h, cos, sin, loads, balances):
        f = self.fns
        if not l.is_moe:
            return f["dense_layer"](h, cos, sin, l.attn_params(), l.input_norm,
                                    l.post_norm, l.w13, l.w2)
        if self.experts_used == "grouped":
            h, load, balance = f["moe_layer_grouped"](
                h, cos, sin, l.attn_params(), l.input_norm, l.post_norm, l.gate,
                l.bias, l.w13, l.w2, l.sw13, l.sw2)
        else:
            h, flat, weights, slots, order, load, balance = f["moe_pre"](
                h, cos, sin, l.attn_params(), l.input_norm, l.post_norm, l.gate, l.bias)
            k = self.cfg.top_k
            y = experts_loop(f["sort_rows"](flat, order, k), load, l.w13, l.w2)
            h = f["moe_post"](h, flat, f["unsort_rows"](y, order), weights, l.sw13, l.sw2)
        loads.append(load)
        balances.append(balance)
        return h

    def forward(self, tokens, seq):
        """tokens [B, seq + D + 1]: dict of loss_total, loss_lm, loss_mtp,
        loss_balance (tensors; None where absent) and loads [MoE layers, E]."""
        c, f = self.cfg, self.fns
        head = self.embed if self.head is None else self.head
        cos, sin = self.cos[:seq], self.sin[:seq]
        loads, balances = [], []
        h = F.embedding(tokens[:, :seq], self.embed)
        for l in self.layers[:c.num_layers]:
            h = self.layer(l, h, cos, sin, loads, balances)
        lm = f["head_loss"](h, self.norm, head, tokens[:, 1:seq + 1])
        mtp = []
        for k in range(1, c.mtp_depth + 1):
            l = self.layers[c.num_layers + k - 1]
            h = f["mtp_in"](h, F.embedding(tokens[:, k:k + seq], self.embed),
                            l.enorm, l.hnorm, l.eh_proj)
            h = self.layer(l, h, cos, sin, loads, balances)
            mtp.append(f["head_loss"](h, l.head_norm, head, tokens[:, k + 1:k + 1 + seq]))
        out = {"loss_lm": lm, "loss_mtp": None, "loss_balance": None, "loss_total": lm,
               "loads": torch.stack(loads) if loads else None}
        if mtp:
            out["loss_mtp"] = torch.stack(mtp).sum() / c.mtp_depth
            out["loss_total"] = lm + self.mtp_loss_weight * out["loss_mtp"]
        if self.balance_loss_alpha > 0 and balances:
            out["loss_balance"] = torch.stack(balances).sum()
            out["loss_total"] = out["loss_total"] + out["loss_balance"]
        return out

    # -- Hugging Face names: loading and comparing

    def hf_names(self):
        c = self.cfg
        whole = slice(None)
        out = [("model.embed_tokens.weight", self, "embed", whole),
               ("model.norm.weight", self, "norm", whole)]
        if self.head is not None:
            out.append(("lm_head.weight", self, "head", whole))
        for l in self.layers:
            out += [(n, l, attr, where) for n, attr, where in l.hf_names(c)]
        return out

    def load_hf(self, params):
        with torch.no_grad():
            for name, owner, attr, where in self.hf_names():
                getattr(owner, attr)[where].copy_(params[name])

    def hf_grads(self):
        """{HF name: gradient} (the bias has none)."""
        out = {}
        for name, owner, attr, where in self.hf_names():
            t = getattr(owner, attr)
            if isinstance(t, torch.nn.Parameter):
                g = t.grad if t.grad is not None else torch.zeros_like(t)
                out[name] = g[where]
        return out

    def init_dsflow(self, std, generator=None):
        """dsflow-run's initialization: matrices N(0, std), norm weights 1,
        router biases 0 (the same distribution, not the same numbers)."""
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() >= 2:
                    p.normal_(0.0, std, generator=generator)
                else:
                    p.fill_(1.0)
            for l in self.moe_layers():
                l.bias.zero_()


# --------------------------------------------------------------------------
# Counting: parameters (as dsflow-compile --emit=summary) and FLOPs
# --------------------------------------------------------------------------

def counts(cfg, seq):
    c = cfg
    shapes = ref.expected_parameters(c)
    numel = lambda s: math.prod(s)
    main = {n: s for n, s in shapes.items()
            if not n.startswith(tuple(f"model.layers.{i}." for i in
                                      range(c.num_layers, c.num_layers + c.mtp_depth)))}
    routed = lambda n: ".experts." in n
    share = c.top_k / c.experts if c.experts else 0.0
    total_main = sum(numel(s) for s in main.values())
    activated_main = sum(numel(s) * (share if routed(n) else 1) for n, s in main.items())
    total = sum(numel(s) for s in shapes.values())
    # Matmul weights applied to each token (routed: k of E); the output head
    # once per prediction depth; not the embedding lookup, norms or biases.
    flop_params = 0.0
    for n, s in shapes.items():
        if len(s) < 2 or n == "model.embed_tokens.weight" or n == "lm_head.weight":
            continue
        flop_params += numel(s) * (share if routed(n) else 1)
    flop_params += (1 + c.mtp_depth) * c.vocab * c.hidden
    attention = 3 * 2 * c.heads * (c.nope + c.rope_dim + c.v_dim) * (seq + 1) / 2 \
        * (c.num_layers + c.mtp_depth)
    return {"params": total, "params_main": total_main,
            "activated_params": int(round(activated_main)),
            "flop_params": int(round(flop_params)),
            "flops_per_token": 6 * flop_params + attention,
            "flops_per_token_6n": 6 * flop_params}


def dsflow_summary(dsflow_compile, model):
    """(main model parameters, activated per token) from --emit=summary."""
    text = subprocess.run([dsflow_compile, model, "--emit=summary"], check=True,
                          stdout=subprocess.PIPE, text=True).stdout
    for line in text.splitlines():
        if line.startswith("main model"):
            numbers = re.findall(r"\d[\d,]*\d|\d", line.split("  ", 1)[1])
            values = [int(x.replace(",", "")) for x in numbers]
            return values[1], values[2]  # tensors, parameters, activated
    raise ValueError("no 'main model' row in dsflow-compile --emit=summary")


def read_spec(path, dsflow_compile=None):
    try:
        if dsflow_compile:
            text = subprocess.run([dsflow_compile, path, "--emit=spec"], check=True,
                                  stdout=subprocess.PIPE, text=True).stdout
        else:
            with open(path) as f:
                text = f.read()
        spec = ref.parse_text_proto(text)
        cfg = ref.Config(spec)
    except (OSError, ValueError, subprocess.CalledProcessError) as e:
        fail(f"{path}: {e}", 1)
    if not (cfg.vocab > 0 and cfg.hidden > 0 and cfg.num_layers > 0 and cfg.heads > 0):
        fail(f"{path}: not a ModelSpec (no vocab_size, hidden_size, num_layers or heads)", 1)
    return spec, cfg


# --------------------------------------------------------------------------
# --check: the peer against deepseek_reference.py
# --------------------------------------------------------------------------

def rel(a, b):
    a, b = a.detach().double().cpu().reshape(-1), b.detach().double().cpu().reshape(-1)
    d = b.norm().item()
    return (a - b).norm().item() / d if d > 0 else (a - b).norm().item()


def random_hf_params(cfg, generator):
    """Small random parameters with HF names, float64: matrices N(0, 0.1^2),
    norms 1 + N(0, 0.1^2), router biases N(0, 0.05^2) (so they matter), but
    -2 for the first MoE layer's expert 0, which no token then chooses (an
    expert without rows)."""
    params = {}
    unused = True
    for name, shape in ref.expected_parameters(cfg).items():
        noise = torch.randn(shape, dtype=torch.float64, generator=generator)
        if name.endswith("e_score_correction_bias"):
            params[name] = 0.05 * noise
            if unused and cfg.top_k < cfg.experts:
                params[name][0] = -2.0
                unused = False
        elif len(shape) == 1:
            params[name] = 1.0 + 0.1 * noise
        else:
            params[name] = 0.1 * noise
    return params


def check(args):
    spec, cfg = read_spec(args.spec, args.dsflow_compile)
    size = counts(cfg, 1)["params"]
    if size > 50_000_000:
        fail(f"--check is for small models (several float64 copies of every "
             f"parameter); {spec.get('name')} has {size:,} parameters")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(1234)
    B, S = 2, 16
    mtp_w, alpha = 0.3, 0.01
    hf = random_hf_params(cfg, gen)
    tokens = torch.randint(0, cfg.vocab, (B, S + cfg.mtp_depth + 1), generator=gen)
    failures = 0
    rows = []

    def add(what, value, tol, ok=None):
        nonlocal failures
        ok = value <= tol if ok is None else ok
        failures += not ok
        rows.append((what, value, tol, ok))

    # The reference, float64 on the CPU.
    bias_names = {n for n in hf if n.endswith("e_score_correction_bias")}
    leaves = {n: t.clone().requires_grad_(n not in bias_names) for n, t in hf.items()}
    reference = ref.DeepSeekV3Reference(cfg, leaves, mtp_w, alpha)
    expected = reference.forward(tokens, S)
    expected["loss_total"].backward()
    ref_grads = {n: (t.grad if t.grad is not None else torch.zeros_like(t))
                 for n, t in leaves.items() if n not in bias_names}
    moe_biases = [f"model.layers.{i}.mlp.gate.e_score_correction_bias"
                  for i in range(cfg.num_layers + cfg.mtp_depth) if cfg.is_moe_layer(i)]
    ref_loads = torch.stack([reference.loads[n] for n in moe_biases]) if moe_biases else None

    def run_peer(attention, experts, device, dtype, compile_mode, grouped_mm=None):
        model = PeerModel(cfg, S, attention, experts, mtp_w, alpha, grouped_mm)
        model = model.to(device=device, dtype=torch.float64 if dtype == "fp64"
                         else torch.float32)
        model.load_hf({n: t.to(device) for n, t in hf.items()})
        model.setup("bf16" if dtype == "bf16" else "fp32", compile_mode)
        ctx = (torch.autocast(device_type=device, dtype=torch.bfloat16)
               if dtype == "bf16" else contextlib.nullcontext())
        with ctx:
            out = model(tokens.to(device), S)
        out["loss_total"].backward()
        return model, out

    def compare(label, model, out, tol_loss, tol_grad, exact_loads=True):
        for key in ("total", "lm", "mtp", "balance"):
            if expected[f"loss_{key}"] is None:
                continue
            add(f"{label}: loss.{key}", rel(out[f"loss_{key}"], expected[f"loss_{key}"]),
                tol_loss)
        if ref_loads is not None:
            moved = int((out["loads"].cpu() - ref_loads).abs().sum().item()) // 2
            # BF16 may flip a near-tie in the selection: shown, not required.
            add(f"{label}: expert loads" + ("" if exact_loads else " (selections moved)"),
                moved, 0, ok=moved == 0 or not exact_loads)
        if tol_grad is not None:
            grads = model.hf_grads()
            worst = max((rel(grads[n], g), n) for n, g in ref_grads.items())
            add(f"{label}: gradients, worst of {len(ref_grads)} ({worst[1]})",
                worst[0], tol_grad)

    attentions = ["math"] + (["sdpa"] if has_sdpa() else [])
    for attention in attentions:
        model, out = run_peer(attention, "loop", "cpu", "fp64", None)
        compare(f"cpu fp64 {attention} loop", model, out, 1e-10, 1e-10)
    # The grouped path's sorting, padding and combining, with GEMMs one group
    # at a time; then with torch._grouped_mm itself where it takes float64.
    model, out = run_peer(attentions[-1], "grouped", "cpu", "fp64", None, grouped_mm_loop)
    compare(f"cpu fp64 {attentions[-1]} grouped (one GEMM a group)", model, out, 1e-10, 1e-10)
    # The BF16 code paths (autocast; the router in FP32), on the CPU.
    model, out = run_peer(attentions[-1], "grouped", "cpu", "bf16", None, grouped_mm_loop)
    compare(f"cpu bf16 {attentions[-1]} grouped (one GEMM a group)", model, out, 2e-2, None,
            exact_loads=False)
    if has_grouped_mm():
        try:
            model, out = run_peer(attentions[-1], "grouped", "cpu", "fp64", None)
            compare(f"cpu fp64 {attentions[-1]} grouped", model, out, 1e-10, 1e-10)
        except RuntimeError as e:  # not every torch has it for float64 on the CPU
            print(f"note: torch._grouped_mm in float64 on the CPU: {str(e).splitlines()[0]}")

    # The parameter counts against dsflow's.
    n = counts(cfg, S)
    ours = sum(t.numel() for t in model.parameters()) + \
        sum(l.bias.numel() for l in model.moe_layers())
    add(f"peer's parameters {ours:,} = HF names' {n['params']:,}", abs(ours - n["params"]), 0)
    if args.dsflow_compile:
        total, activated = dsflow_summary(args.dsflow_compile, args.spec)
        add(f"main model {n['params_main']:,} (dsflow {total:,})",
            abs(total - n["params_main"]), 0)
        add(f"activated/token {n['activated_params']:,} (dsflow {activated:,})",
            abs(activated - n["activated_params"]), 0)

    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        modes = [None] + ([args.compile_mode] if args.compile else [])
        for mode in modes:
            tag = "compiled" if mode else "eager"
            model, out = run_peer("auto", "auto", "cuda", "fp32", mode)
            compare(f"cuda fp32 {tag} {model.attention} {model.experts_used}", model, out,
                    1e-4, 1e-4)
            model, out = run_peer("auto", "auto", "cuda", "bf16", mode)
            compare(f"cuda bf16 {tag} {model.attention} {model.experts_used}", model, out,
                    2e-2, None, exact_loads=False)

    print(f"== torch_peer.py --check: {spec.get('name', args.spec)}, B={B} S={S}, "
          f"reference: test/reference/deepseek_reference.py (float64), "
          f"torch {torch.__version__}")
    for what, value, tol, ok in rows:
        v = f"{value:10.3e}" if isinstance(value, float) else f"{value!s:>10}"
        t = f"{tol:10.0e}" if isinstance(tol, float) else f"{tol!s:>10}"
        print(f"  {what:<64} {v} {t}  {'ok' if ok else 'FAIL'}")
    print(f"torch_peer.py --check: {len(rows) - failures} passed, {failures} failed")
    return 1 if failures else 0


# --------------------------------------------------------------------------
# Training and timing
# --------------------------------------------------------------------------

def learning_rate(step, d=DSFLOW_DEFAULTS):
    """runtime/train/LrSchedule.h: linear warmup, cosine decay to min_lr."""
    if step < d["warmup_steps"]:
        return d["lr"] * (step + 1) / d["warmup_steps"]
    decay = max(1, d["total_steps"] - d["warmup_steps"])
    progress = min(1.0, (step - d["warmup_steps"]) / decay)
    return d["min_lr"] + (d["lr"] - d["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))


def make_optimizer(model, device):
    d = DSFLOW_DEFAULTS
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": d["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    for kind in (("fused",) if device == "cuda" else ()) + ("foreach", "for-loop"):
        try:
            extra = {} if kind == "for-loop" else {kind: True}
            opt = torch.optim.AdamW(groups, lr=d["lr"], betas=d["betas"], eps=d["eps"], **extra)
            return opt, kind
        except (TypeError, RuntimeError, ValueError):
            continue
    fail("no AdamW")


def clip_gradients(params, max_norm):
    try:
        return torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True)
    except TypeError:  # PyTorch < 2.0
        return torch.nn.utils.clip_grad_norm_(params, max_norm)


def train(args):
    spec, cfg = read_spec(args.spec, args.dsflow_compile)
    device = args.device
    compile_on = args.compile if args.compile is not None else device == "cuda"
    if compile_on and not hasattr(torch, "compile"):
        fail(f"--compile needs torch.compile (PyTorch 2.0 or later; this is "
             f"{torch.__version__}); run with --no-compile")
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    torch.manual_seed(args.seed)
    S, B, D = args.seq_len, args.micro_batch, cfg.mtp_depth
    model = PeerModel(cfg, S, args.attention, args.experts).to(device)
    model.init_dsflow(DSFLOW_DEFAULTS["init_std"])
    model.setup(args.dtype, args.compile_mode if compile_on else None)
    opt, adamw = make_optimizer(model, device)
    params = [p for p in model.parameters() if p.requires_grad]

    window = S + D + 1
    gen = torch.Generator(device=device).manual_seed(args.seed)
    if args.data:
        try:
            with open(args.data, "rb") as f:
                data = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8)
        except OSError as e:
            fail(f"{args.data}: {e.strerror}", 1)
        if data.numel() <= window:
            fail(f"{args.data}: {data.numel()} bytes, fewer than a window of {window + 1}")
        if cfg.vocab < 256:
            fail(f"--data is byte tokens; the model's vocabulary is {cfg.vocab}")
        data = data.to(device)
        offsets = torch.arange(window, device=device)

        def batch():
            starts = torch.randint(0, data.numel() - window + 1, (B, 1), device=device,
                                   generator=gen)
            return data[starts + offsets].long()
    else:
        def batch():
            return torch.randint(0, cfg.vocab, (B, window), device=device, generator=gen)

    autocast = (lambda: torch.autocast(device_type=device, dtype=torch.bfloat16)) \
        if args.dtype == "bf16" else contextlib.nullcontext
    gamma = DSFLOW_DEFAULTS["bias_update_speed"]
    moe_layers = model.moe_layers()

    def step(i):
        tokens = batch()
        with autocast():
            out = model(tokens, S)
        out["loss_total"].backward()
        if DSFLOW_DEFAULTS["grad_clip"] > 0:
            clip_gradients(params, DSFLOW_DEFAULTS["grad_clip"])
        for g in opt.param_groups:
            g["lr"] = learning_rate(i)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if gamma > 0 and moe_layers:
            with torch.no_grad():
                loads = out["loads"].to(torch.float32)
                signs = torch.sign(loads.mean(-1, keepdim=True) - loads)
                for l, s in zip(moe_layers, signs):
                    l.bias.add_(gamma * s)
        return out["loss_total"].detach(), out["loss_lm"].detach()

    cuda = device == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    first_step_s = None
    for i in range(args.warmup + args.steps):
        if cuda:
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
        wall = time.perf_counter()
        losses.append(step(i))
        if cuda:
            end.record()
        if i == 0:
            if cuda:
                torch.cuda.synchronize()
            first_step_s = time.perf_counter() - wall
        if i >= args.warmup:
            times.append((begin, end) if cuda else time.perf_counter() - wall)
    if cuda:
        torch.cuda.synchronize()
        times = [b.elapsed_time(e) / 1000.0 for b, e in times]
    step_s = statistics.median(times)
    tokens_per_step = B * S
    tps = tokens_per_step / step_s
    n = counts(cfg, S)
    peak = args.peak_tflops * 1e12
    total = [t.item() for t, _ in losses]
    lm = [x.item() for _, x in losses]
    result = {
        "tokens_per_s": tps,
        "step_ms": step_s * 1e3,
        "step_ms_mean": statistics.mean(times) * 1e3,
        "step_ms_min": min(times) * 1e3,
        "first_step_s": first_step_s,
        "mfu": n["flops_per_token"] * tps / peak,
        "mfu_6n": n["flops_per_token_6n"] * tps / peak,
        "peak_tflops": args.peak_tflops,
        "flops_per_token": n["flops_per_token"],
        "flops_per_token_6n": n["flops_per_token_6n"],
        "loss_first": total[0], "loss_last": total[-1],
        "lm_loss_first": lm[0], "lm_loss_last": lm[-1],
        "params": n["params"], "params_main": n["params_main"],
        "activated_params": n["activated_params"], "flop_params": n["flop_params"],
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "config": {
            "model": spec.get("name"), "spec": args.spec, "seq_len": S, "micro_batch": B,
            "tokens_per_step": tokens_per_step, "steps": args.steps, "warmup": args.warmup,
            "dtype": args.dtype, "compile": compile_on,
            "compile_mode": args.compile_mode if compile_on else None,
            "device": torch.cuda.get_device_name() if cuda else "cpu",
            "torch": torch.__version__, "attention": model.attention,
            "experts": model.experts_used, "adamw": adamw, "tf32": bool(args.tf32 and cuda),
            "data": args.data or "random tokens", "seed": args.seed,
            "threads": torch.get_num_threads(),
            "training": {k: v for k, v in DSFLOW_DEFAULTS.items()},
            "attention_flops": "causal: QK^T and PV over (S+1)/2 positions, x3 for training",
        },
    }
    line = json.dumps(result)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.splitlines()[2:]))
    p.add_argument("--spec", required=True,
                   help="ModelSpec text proto (dsflow-compile --emit=spec), or with "
                        "--dsflow-compile any model description it reads")
    p.add_argument("--dsflow-compile", help="dsflow-compile, to read --spec through it "
                                            "(and, with --check, compare the counts)")
    p.add_argument("--check", action="store_true",
                   help="check the peer against deepseek_reference.py and exit")
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=20, help="timed steps")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    p.add_argument("--dtype", choices=["fp32", "bf16"], default="bf16")
    p.add_argument("--compile", dest="compile", action="store_true", default=None,
                   help="torch.compile each block (default on cuda)")
    p.add_argument("--no-compile", dest="compile", action="store_false")
    p.add_argument("--compile-mode", default="default",
                   help="torch.compile mode (default, max-autotune-no-cudagraphs, ...)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                   help="auto: cuda where torch sees a GPU, else cpu")
    p.add_argument("--attention", choices=["auto", "sdpa", "math"], default="auto")
    p.add_argument("--experts", choices=["auto", "grouped", "loop"], default="auto",
                   help="auto: torch._grouped_mm for bf16 on a Hopper GPU, else loop")
    p.add_argument("--tf32", action="store_true", help="allow TF32 for FP32 GEMMs")
    p.add_argument("--data", help="byte tokens from this file (default random tokens)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--peak-tflops", type=float, default=989.0,
                   help="peak FLOP/s for MFU (default 989: H100 SXM BF16 dense)")
    p.add_argument("--json", help="also write the JSON line here")
    p.add_argument("--threads", type=int, help="torch.set_num_threads on the CPU")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    elif args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no GPU visible to torch")
    if args.check:
        if args.compile and not hasattr(torch, "compile"):
            fail(f"--compile needs torch.compile (PyTorch 2.0+; this is {torch.__version__})")
        return check(args)
    if args.steps < 1 or args.warmup < 0 or args.seq_len < 1 or args.micro_batch < 1:
        fail("--steps, --seq-len and --micro-batch must be positive, --warmup >= 0")
    return train(args)


if __name__ == "__main__":
    sys.exit(main())
