"""An independent PyTorch implementation of DeepSeek-V3's architecture.

Written from the architecture's definition (DeepSeek-V3 technical report, the
reference inference code and Hugging Face's modeling_deepseek.py), not from
dsflow's kernels, so that dsflow can be checked against it: the same parameter
names (Hugging Face checkpoint names), the same forward computation, autograd
for the gradients.

  embedding -> L decoder layers (pre-norm; MLA attention; dense SwiGLU FFN for
  the first `num_dense_layers` layers, DeepSeekMoE after) -> final RMSNorm ->
  lm_head, cross-entropy on the next token; then D MTP modules, module k being
  layer L+k-1: eh_proj([enorm(emb(tokens shifted by k)); hnorm(h_{k-1})]) -> a
  decoder layer -> shared_head.norm -> the shared lm_head, cross-entropy on the
  token k+1 ahead. loss = L_main + lambda/D * sum_k L_k + sum over MoE layers
  of the complementary sequence-wise balance loss (report eq. 17-20).

Also here: a reader for safetensors files and for the protobuf text that
`dsflow-compile --emit=spec` prints. Only torch and the standard library.
"""

import json
import math
import struct

import torch
import torch.nn.functional as F


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------

_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "U8": (torch.uint8, 1),
    "BF16": (torch.bfloat16, 2),
}


def read_safetensors(path):
    """{name: tensor} from a safetensors file (8-byte LE header length, JSON
    header, then the raw little-endian data)."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + header_len].decode("utf-8"))
    data = blob[8 + header_len:]
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, size = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = list(info["shape"])
        count = 1
        for d in shape:
            count *= d
        if end - begin != count * size:
            raise ValueError(f"{path}: {name}: {end - begin} bytes for {shape}")
        raw = bytearray(data[begin:end])
        if count == 0:
            t = torch.zeros(shape, dtype=dtype)
        elif dtype == torch.bfloat16:
            bits = torch.frombuffer(raw, dtype=torch.int16).to(torch.int32)
            t = ((bits & 0xFFFF) << 16).view(torch.float32).to(torch.bfloat16)
        else:
            t = torch.frombuffer(raw, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    return tensors


def _strip_comment(line):
    """The line without a '#' comment ('#' inside a quoted string stays)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i]
    return line


def parse_text_proto(text):
    """A protobuf text message as nested dicts: `key: value` and `key { ... }`
    lines, '#' comments. Scalars become int, float, bool or str (enums as
    their names); repeated keys are not needed for a ModelSpec."""
    root = {}
    stack = [root]
    for raw in text.splitlines():
        line = _strip_comment(raw).strip()
        if not line:
            continue
        if line == "}":
            stack.pop()
            continue
        if line.endswith("{"):
            key = line[:-1].strip().rstrip(":").strip()
            child = {}
            stack[-1][key] = child
            stack.append(child)
            continue
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if value.startswith('"'):
            parsed = value[1:value.rindex('"')]
        elif value in ("true", "false"):
            parsed = value == "true"
        else:
            try:
                parsed = int(value)
            except ValueError:
                try:
                    parsed = float(value)
                except ValueError:
                    parsed = value  # an enum name
        stack[-1][key] = parsed
    if len(stack) != 1:
        raise ValueError("unbalanced braces in the text proto")
    return root


class Config:
    """The hyperparameters of a ModelSpec (proto3: absent fields are zero)."""

    def __init__(self, spec):
        g = lambda d, k, default=0: d.get(k, default)
        attn, moe = spec.get("attention", {}), spec.get("moe", {})
        rope = spec.get("rope", {})
        self.vocab = g(spec, "vocab_size")
        self.hidden = g(spec, "hidden_size")
        self.num_layers = g(spec, "num_layers")
        self.num_dense_layers = g(spec, "num_dense_layers")
        self.dense_ffn = g(spec, "dense_ffn_size")
        self.eps = float(g(spec, "rms_norm_eps"))
        self.tie_embeddings = bool(g(spec, "tie_embeddings", False))
        self.heads = g(attn, "num_heads")
        self.q_lora_rank = g(attn, "q_lora_rank")
        self.kv_lora_rank = g(attn, "kv_lora_rank")
        self.nope = g(attn, "qk_nope_head_dim")
        self.rope_dim = g(attn, "qk_rope_head_dim")
        self.v_dim = g(attn, "v_head_dim")
        self.experts = g(moe, "num_routed_experts")
        self.shared = g(moe, "num_shared_experts")
        self.top_k = g(moe, "experts_per_token")
        self.expert_ffn = g(moe, "expert_ffn_size")
        self.groups = g(moe, "expert_groups", 1) or 1
        self.groups_per_token = g(moe, "groups_per_token", 1) or 1
        self.route_scale = float(g(moe, "route_scale", 1.0))
        self.score_function = g(moe, "score_function", "SIGMOID")
        self.normalize_topk = bool(g(moe, "normalize_topk", False))
        self.mtp_depth = g(spec.get("mtp", {}), "depth")
        self.theta = float(g(rope, "theta"))
        self.yarn = rope.get("yarn")  # None: plain RoPE

    def is_moe_layer(self, layer):
        return self.experts > 0 and layer >= self.num_dense_layers


# --------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------

def rms_norm(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def swiglu_ffn(x, gate, up, down):
    return F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def yarn_mscale(factor, mscale):
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def rope_frequencies(cfg):
    """The rope_dim/2 rotation frequencies theta^(-2i/d), with YaRN's
    frequency interpolation when configured (DeepSeek-V3's
    precompute_freqs_cis / HF's DeepseekV3YarnRotaryEmbedding), in float64."""
    dim, base = cfg.rope_dim, cfg.theta
    freqs = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    if cfg.yarn is not None:
        factor = float(cfg.yarn.get("factor", 0))
        original = cfg.yarn.get("original_max_position", 0)
        beta_fast = float(cfg.yarn.get("beta_fast", 0))
        beta_slow = float(cfg.yarn.get("beta_slow", 0))

        def correction_dim(rotations):
            return (dim * math.log(original / (rotations * 2 * math.pi)) /
                    (2 * math.log(base)))

        low = max(math.floor(correction_dim(beta_fast)), 0)
        high = min(math.ceil(correction_dim(beta_slow)), dim - 1)
        if low == high:
            high += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float64) - low) /
                (high - low)).clamp(0, 1)
        smooth = 1 - ramp
        freqs = freqs / factor * (1 - smooth) + freqs * smooth
    return freqs


def apply_rope(x, freqs):
    """x [B, S, heads, d]: rotates each interleaved pair (x[2i], x[2i+1]) at
    position s by s * freqs[i] (the layout of DeepSeek's checkpoints; HF
    de-interleaves q and k alike, which gives the same attention scores)."""
    seq = x.shape[1]
    angles = torch.outer(torch.arange(seq, dtype=torch.float64), freqs)
    cos = angles.cos().to(x.dtype)[None, :, None, :]
    sin = angles.sin().to(x.dtype)[None, :, None, :]
    pairs = x.unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack((a * cos - b * sin, a * sin + b * cos), -1).flatten(-2)


def router_scores(logits, score_function):
    """The router's scores from the gate's logits: sigmoid (DeepSeek-V3) or
    softmax over the experts."""
    if score_function == "SIGMOID":
        return torch.sigmoid(logits)
    if score_function == "SOFTMAX":
        return torch.softmax(logits, dim=-1)
    raise ValueError(f"unknown score function {score_function}")


def softmax_scale(cfg):
    scale = 1.0 / math.sqrt(cfg.nope + cfg.rope_dim)
    if cfg.yarn is not None and float(cfg.yarn.get("mscale_all_dim", 0)) != 0:
        m = yarn_mscale(float(cfg.yarn.get("factor", 0)),
                        float(cfg.yarn.get("mscale_all_dim")))
        scale *= m * m
    return scale


# --------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------

class DeepSeekV3Reference:
    """A functional model over a {HF name: tensor} dict. `used` records every
    parameter name read, to compare the parameter set with the checkpoint's."""

    def __init__(self, cfg, params, mtp_loss_weight, balance_loss_alpha=0.0):
        self.cfg = cfg
        self.p = params
        self.mtp_loss_weight = mtp_loss_weight
        self.balance_loss_alpha = balance_loss_alpha
        self.balance_losses = []  # one per MoE layer (main model, then MTP)
        self.used = set()
        self.freqs = rope_frequencies(cfg)
        self.loads = {}   # bias name -> expert token counts (int64)
        self.margins = []  # per MoE layer: smallest selection margin

    def w(self, name):
        self.used.add(name)
        return self.p[name]

    def attention(self, x, prefix):
        c, p = self.cfg, prefix + "self_attn."
        B, S, _ = x.shape
        if c.q_lora_rank > 0:
            q = F.linear(rms_norm(F.linear(x, self.w(p + "q_a_proj.weight")),
                                  self.w(p + "q_a_layernorm.weight"), c.eps),
                         self.w(p + "q_b_proj.weight"))
        else:
            q = F.linear(x, self.w(p + "q_proj.weight"))
        q = q.view(B, S, c.heads, c.nope + c.rope_dim)
        q_nope, q_pe = q.split([c.nope, c.rope_dim], -1)
        q_pe = apply_rope(q_pe, self.freqs)

        kv_a = F.linear(x, self.w(p + "kv_a_proj_with_mqa.weight"))
        latent, k_pe = kv_a.split([c.kv_lora_rank, c.rope_dim], -1)
        k_pe = apply_rope(k_pe.reshape(B, S, 1, c.rope_dim), self.freqs)
        kv = F.linear(rms_norm(latent, self.w(p + "kv_a_layernorm.weight"), c.eps),
                      self.w(p + "kv_b_proj.weight"))
        kv = kv.view(B, S, c.heads, c.nope + c.v_dim)
        k_nope, v = kv.split([c.nope, c.v_dim], -1)

        # [B, heads, S, d]
        query = torch.cat([q_nope, q_pe], -1).transpose(1, 2)
        key = torch.cat([k_nope, k_pe.expand(B, S, c.heads, c.rope_dim)],
                        -1).transpose(1, 2)
        value = v.transpose(1, 2)
        scores = torch.matmul(query, key.transpose(-1, -2)) * softmax_scale(c)
        causal = torch.ones(S, S, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, value).transpose(1, 2).reshape(
            B, S, c.heads * c.v_dim)
        return F.linear(out, self.w(p + "o_proj.weight"))

    @staticmethod
    def _top(values, k):
        """Indices of the k largest entries of each row, ties to the lower
        index (a stable descending sort keeps equal entries in index order)."""
        order = torch.sort(values, dim=-1, descending=True, stable=True)[1]
        return order[..., :k]

    def route(self, x, prefix):
        """DeepSeek-V3's gate: returns (weights [T, k], indices [T, k])."""
        c, p = self.cfg, prefix + "mlp.gate."
        bias_name = p + "e_score_correction_bias"
        scores = router_scores(F.linear(x, self.w(p + "weight")), c.score_function)
        T, E = scores.shape
        with torch.no_grad():
            biased = scores.detach() + self.w(bias_name).to(scores.dtype)
            per_group = E // c.groups
            grouped = biased.view(T, c.groups, per_group)
            if c.score_function == "SIGMOID":
                top2 = torch.sort(grouped, dim=-1, descending=True)[0][..., :2]
                group_scores = top2.sum(-1)
            else:
                group_scores = grouped.max(-1)[0]
            kept_groups = self._top(group_scores, c.groups_per_token)
            group_mask = torch.zeros(T, c.groups, dtype=torch.bool)
            group_mask.scatter_(1, kept_groups, True)
            expert_mask = group_mask.repeat_interleave(per_group, dim=1)
            candidates = biased.masked_fill(~expert_mask, float("-inf"))
            indices = self._top(candidates, c.top_k)
            # How close selection came to a tie (for diagnosing a flip).
            ranked = torch.sort(candidates, dim=-1, descending=True)[0]
            margin = (ranked[:, c.top_k - 1] - ranked[:, c.top_k]).min().item() \
                if c.top_k < E else float("inf")
            gs = torch.sort(group_scores, dim=-1, descending=True)[0]
            if c.groups_per_token < c.groups:
                margin = min(margin, (gs[:, c.groups_per_token - 1] -
                                      gs[:, c.groups_per_token]).min().item())
            self.margins.append((prefix, margin))
            self.loads[bias_name] = torch.bincount(
                indices.reshape(-1), minlength=E).to(torch.int64)
        weights = scores.gather(1, indices)
        if c.normalize_topk:
            weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
        return weights * c.route_scale, indices, scores

    def balance_loss(self, scores, indices, sequences):
        """DeepSeek-V3's complementary sequence-wise balance loss, per sequence
        of S tokens: alpha * sum_i f_i P_i with f_i = E/(k S) * #(tokens of the
        sequence that chose expert i), P_i = mean over the sequence of
        s_i / sum_j s_j; averaged over the sequences. f is a count (no
        gradient); the gradient reaches the router through P."""
        c = self.cfg
        T, E = scores.shape
        S = T // sequences
        chosen = F.one_hot(indices, E).sum(1).view(sequences, S, E)
        f = chosen.sum(1).to(scores.dtype) * (E / (c.top_k * S))
        normalized = scores / scores.sum(-1, keepdim=True)
        P = normalized.view(sequences, S, E).mean(1)
        return self.balance_loss_alpha * (f * P).sum(-1).mean()

    def moe(self, x, prefix):
        c, p = self.cfg, prefix + "mlp."
        B, S, H = x.shape
        flat = x.reshape(B * S, H)
        weights, indices, scores = self.route(flat, prefix)
        if self.balance_loss_alpha > 0:
            self.balance_losses.append(self.balance_loss(scores, indices, B))
        out = torch.zeros_like(flat)
        for e in range(c.experts):
            ep = f"{p}experts.{e}."
            gate, up, down = (self.w(ep + "gate_proj.weight"),
                              self.w(ep + "up_proj.weight"),
                              self.w(ep + "down_proj.weight"))
            token, slot = torch.nonzero(indices == e, as_tuple=True)
            if token.numel() == 0:
                continue
            y = swiglu_ffn(flat[token], gate, up, down)
            out = out.index_add(0, token, y * weights[token, slot].unsqueeze(-1))
        if c.shared > 0:
            sp = p + "shared_experts."
            out = out + swiglu_ffn(flat, self.w(sp + "gate_proj.weight"),
                                   self.w(sp + "up_proj.weight"),
                                   self.w(sp + "down_proj.weight"))
        return out.view(B, S, H)

    def dense_ffn(self, x, prefix):
        p = prefix + "mlp."
        return swiglu_ffn(x, self.w(p + "gate_proj.weight"),
                          self.w(p + "up_proj.weight"),
                          self.w(p + "down_proj.weight"))

    def decoder_layer(self, h, layer):
        c, prefix = self.cfg, f"model.layers.{layer}."
        h = h + self.attention(
            rms_norm(h, self.w(prefix + "input_layernorm.weight"), c.eps), prefix)
        x = rms_norm(h, self.w(prefix + "post_attention_layernorm.weight"), c.eps)
        ffn = self.moe if c.is_moe_layer(layer) else self.dense_ffn
        return h + ffn(x, prefix)

    def forward(self, tokens, seq):
        """tokens [B, seq + D + 1] (int64). Returns a dict: logits (list: main,
        then MTP depth 1..D, each [B, S, V]), loss_total, loss_lm, loss_mtp
        (mean over depths; None without MTP), loss_balance (sum over MoE
        layers; None when alpha is 0)."""
        c = self.cfg
        embed = self.w("model.embed_tokens.weight")
        head = embed if c.tie_embeddings else self.w("lm_head.weight")
        h = F.embedding(tokens[:, 0:seq], embed)
        for layer in range(c.num_layers):
            h = self.decoder_layer(h, layer)
        logits = [F.linear(rms_norm(h, self.w("model.norm.weight"), c.eps), head)]
        lm_loss = F.cross_entropy(logits[0].flatten(0, 1),
                                  tokens[:, 1:seq + 1].flatten())
        mtp_losses = []
        for k in range(1, c.mtp_depth + 1):
            prefix = f"model.layers.{c.num_layers + k - 1}."
            e = rms_norm(F.embedding(tokens[:, k:k + seq], embed),
                         self.w(prefix + "enorm.weight"), c.eps)
            hn = rms_norm(h, self.w(prefix + "hnorm.weight"), c.eps)
            h = F.linear(torch.cat([e, hn], -1), self.w(prefix + "eh_proj.weight"))
            h = self.decoder_layer(h, c.num_layers + k - 1)
            logits.append(F.linear(
                rms_norm(h, self.w(prefix + "shared_head.norm.weight"), c.eps),
                head))
            mtp_losses.append(F.cross_entropy(
                logits[-1].flatten(0, 1), tokens[:, k + 1:k + 1 + seq].flatten()))
        result = {"logits": logits, "loss_lm": lm_loss, "loss_mtp": None,
                  "loss_balance": None, "loss_total": lm_loss}
        if mtp_losses:
            mtp = torch.stack(mtp_losses).sum() / c.mtp_depth
            result["loss_mtp"] = mtp
            result["loss_total"] = lm_loss + self.mtp_loss_weight * mtp
        if self.balance_losses:
            balance = torch.stack(self.balance_losses).sum()
            result["loss_balance"] = balance
            result["loss_total"] = result["loss_total"] + balance
        return result


def expected_parameters(cfg):
    """{HF name: shape} of every parameter the model reads (MTP modules share
    the main model's embedding and head, as in training)."""
    c = cfg
    shapes = {"model.embed_tokens.weight": (c.vocab, c.hidden),
              "model.norm.weight": (c.hidden,)}
    if not c.tie_embeddings:
        shapes["lm_head.weight"] = (c.vocab, c.hidden)
    for layer in range(c.num_layers + c.mtp_depth):
        p = f"model.layers.{layer}."
        a = p + "self_attn."
        shapes[p + "input_layernorm.weight"] = (c.hidden,)
        shapes[p + "post_attention_layernorm.weight"] = (c.hidden,)
        qk = c.heads * (c.nope + c.rope_dim)
        if c.q_lora_rank > 0:
            shapes[a + "q_a_proj.weight"] = (c.q_lora_rank, c.hidden)
            shapes[a + "q_a_layernorm.weight"] = (c.q_lora_rank,)
            shapes[a + "q_b_proj.weight"] = (qk, c.q_lora_rank)
        else:
            shapes[a + "q_proj.weight"] = (qk, c.hidden)
        shapes[a + "kv_a_proj_with_mqa.weight"] = (c.kv_lora_rank + c.rope_dim,
                                                   c.hidden)
        shapes[a + "kv_a_layernorm.weight"] = (c.kv_lora_rank,)
        shapes[a + "kv_b_proj.weight"] = (c.heads * (c.nope + c.v_dim),
                                          c.kv_lora_rank)
        shapes[a + "o_proj.weight"] = (c.hidden, c.heads * c.v_dim)
        m = p + "mlp."
        if c.is_moe_layer(layer):
            shapes[m + "gate.weight"] = (c.experts, c.hidden)
            shapes[m + "gate.e_score_correction_bias"] = (c.experts,)
            for e in range(c.experts):
                shapes[f"{m}experts.{e}.gate_proj.weight"] = (c.expert_ffn, c.hidden)
                shapes[f"{m}experts.{e}.up_proj.weight"] = (c.expert_ffn, c.hidden)
                shapes[f"{m}experts.{e}.down_proj.weight"] = (c.hidden, c.expert_ffn)
            if c.shared > 0:
                f = c.shared * c.expert_ffn
                shapes[m + "shared_experts.gate_proj.weight"] = (f, c.hidden)
                shapes[m + "shared_experts.up_proj.weight"] = (f, c.hidden)
                shapes[m + "shared_experts.down_proj.weight"] = (c.hidden, f)
        else:
            shapes[m + "gate_proj.weight"] = (c.dense_ffn, c.hidden)
            shapes[m + "up_proj.weight"] = (c.dense_ffn, c.hidden)
            shapes[m + "down_proj.weight"] = (c.hidden, c.dense_ffn)
        if layer >= c.num_layers:
            shapes[p + "enorm.weight"] = (c.hidden,)
            shapes[p + "hnorm.weight"] = (c.hidden,)
            shapes[p + "eh_proj.weight"] = (c.hidden, 2 * c.hidden)
            shapes[p + "shared_head.norm.weight"] = (c.hidden,)
    return shapes
