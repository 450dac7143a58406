#!/usr/bin/python3
"""lws checkpoints in PyTorch: the model lws trains, as an nn.Module.

    import sys; sys.path.insert(0, "python")   # this directory of an lws checkout
    import lws_torch
    model = lws_torch.load("runs/x/checkpoints/step-00000200")

`load` takes a checkpoint directory, its model.safetensors, or a run directory
(its newest checkpoint) and returns an LwsModel holding the checkpoint's
weights (float32 by default) with the resolved config in `model.config`;
`model(tokens)` maps (B, T) int64 token ids to (B, T, vocab) logits, the
forward lws computes (docs/design.md §2). `evaluate` scores token
windows as `lws eval` does, and `validation_tokens` reads the split of the
config's data the run validated on:

    tokens, bytes_per_token = lws_torch.validation_tokens(model.config)
    loss, count, bits_per_byte = lws_torch.evaluate(model, tokens, bytes_per_token)

Needs PyTorch and the Python standard library only (Debian's python3-torch).
tests/torch_reference.py, the reference lws is checked against, builds on
this module.
"""

import json
import math
import os
import re
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

class InputError(Exception):
    """A file or config that the reference refuses, with what to do about it."""


# ---------------------------------------------------------------------------
# safetensors: u64 little-endian header length, a JSON header
# {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
# then the raw little-endian data; offsets are relative to the data section,
# which the tensors cover exactly (no holes, no overlaps), as the format requires.

# dtype name -> (torch dtype used to hold it, bytes per element)
SAFETENSORS_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "U32": (torch.int64, 4),  # torch 1.13 has no uint32: held as int64
    "U8": (torch.uint8, 1),
}
TORCH_TO_SAFETENSORS = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
}
MAX_HEADER_BYTES = 100 * 1024 * 1024


def _require_little_endian():
    if sys.byteorder != "little":
        raise InputError("safetensors data is little-endian; this host is " + sys.byteorder)


def read_safetensors(path):
    """Returns ({name: tensor}, {metadata key: string}) of the file at path."""
    _require_little_endian()
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise InputError(f"file {path}: cannot read it ({e.strerror})")
    if len(blob) < 8:
        raise InputError(f"file {path}: {len(blob)} bytes is too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", blob[:8])
    if header_len > MAX_HEADER_BYTES or 8 + header_len > len(blob):
        raise InputError(
            f"file {path}: header length {header_len} does not fit the {len(blob)}-byte file"
        )
    try:
        header = json.loads(blob[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise InputError(f"file {path}: header is not JSON ({e})")
    if not isinstance(header, dict):
        raise InputError(f"file {path}: header must be a JSON object")
    metadata = header.pop("__metadata__", {}) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise InputError(f"file {path}: __metadata__ must map names to strings")
    data = memoryview(blob)[8 + header_len :]
    tensors, spans = {}, []
    for name, entry in header.items():
        where = f"file {path}: tensor {name}"
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            raise InputError(f"{where}: entry needs exactly dtype, shape, data_offsets")
        dtype = entry["dtype"]
        if dtype not in SAFETENSORS_DTYPES:
            allowed = ", ".join(SAFETENSORS_DTYPES)
            raise InputError(f"{where}: dtype {dtype!r} is not supported; use one of {allowed}")
        shape = entry["shape"]
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise InputError(f"{where}: shape {shape!r} must be a list of sizes >= 0")
        offsets = entry["data_offsets"]
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
        ):
            raise InputError(f"{where}: data_offsets {offsets!r} must be [begin, end]")
        begin, end = offsets
        torch_dtype, size = SAFETENSORS_DTYPES[dtype]
        numel = math.prod(shape)
        if not 0 <= begin <= end <= len(data) or end - begin != numel * size:
            raise InputError(
                f"{where}: data_offsets [{begin}, {end}] do not hold {numel} {dtype} values "
                f"inside the {len(data)}-byte data section"
            )
        spans.append((begin, end, name))
        tensors[name] = _tensor_from_bytes(data[begin:end], dtype, shape)
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            raise InputError(
                f"file {path}: tensor {name} starts at byte {begin} of the data section, "
                f"expected {position} (the tensors must cover the data without holes or overlaps)"
            )
        position = end
    if position != len(data):
        raise InputError(
            f"file {path}: the tensors end at byte {position} of a {len(data)}-byte data section"
        )
    return tensors, metadata


def _tensor_from_bytes(raw, dtype, shape):
    torch_dtype, _ = SAFETENSORS_DTYPES[dtype]
    if len(raw) == 0:
        return torch.empty(shape, dtype=torch_dtype)
    buffer = bytearray(raw)  # frombuffer shares memory: give it its own writable copy
    if dtype == "U32":
        return (torch.frombuffer(buffer, dtype=torch.int32).to(torch.int64) & 0xFFFFFFFF).reshape(
            shape
        )
    return torch.frombuffer(buffer, dtype=torch_dtype).reshape(shape)


def write_safetensors(path, tensors, metadata=None, dtypes=None):
    """Writes {name: tensor} to path. dtypes may name a file dtype per tensor
    (e.g. "U32" for an int64 tensor); otherwise it follows the tensor's dtype."""
    _require_little_endian()
    header, chunks, position = {}, [], 0
    for name, tensor in tensors.items():
        dtype = (dtypes or {}).get(name) or TORCH_TO_SAFETENSORS.get(tensor.dtype)
        if dtype not in SAFETENSORS_DTYPES:
            raise InputError(f"tensor {name}: dtype {tensor.dtype} cannot be written")
        torch_dtype, size = SAFETENSORS_DTYPES[dtype]
        values = tensor.detach().to("cpu").contiguous().reshape(-1)
        if dtype == "U32":
            if values.numel() and (values.min() < 0 or values.max() > 0xFFFFFFFF):
                raise InputError(f"tensor {name}: values do not fit U32")
            values = values.to(torch.int64)
            values = torch.where(values >= 2**31, values - 2**32, values).to(torch.int32)
        else:
            values = values.to(torch_dtype)
        raw = bytearray(values.numel() * size)
        if raw:
            torch.frombuffer(raw, dtype=values.dtype).copy_(values)
        header[name] = {
            "dtype": dtype,
            "shape": list(tensor.shape),
            "data_offsets": [position, position + len(raw)],
        }
        chunks.append(raw)
        position += len(raw)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned, as the format's writer does
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for chunk in chunks:
            f.write(chunk)


# ---------------------------------------------------------------------------
# The resolved config.


class ModelConfig:
    """The parts of an lws resolved config that define the network."""

    def __init__(self, config):
        model = _section(config, "model")
        lws = _section(config, "lws")
        self.d_model = _field(model, "model", "d_model", int, minimum=1)
        self.n_layers = _field(model, "model", "n_layers", int, minimum=1)
        self.head_dim = _field(model, "model", "head_dim", int, minimum=2)
        self.vocab_size = _field(model, "model", "vocab_size", int, minimum=1)
        self.block = _field(model, "model", "block", str)
        self.tied_embeddings = _field(model, "model", "tied_embeddings", bool)
        self.rope_theta = _field(model, "model", "rope_theta", (int, float))
        self.norm_eps = _field(model, "model", "norm_eps", (int, float))
        self.qk_norm = _field(model, "model", "qk_norm", bool)
        self.init_std = float(model.get("init_std", 0.02))
        if self.block not in ("post_norm", "pre_norm"):
            raise InputError(
                f"config: model.block {self.block!r} is not allowed; use post_norm or pre_norm"
            )
        if self.head_dim % 2:
            raise InputError(
                f"config: model.head_dim {self.head_dim} must be even (RoPE rotates pairs)"
            )
        self.ffn_dims = _layer_list(lws, "ffn_dims", self.n_layers)
        self.q_heads = _layer_list(lws, "q_heads", self.n_layers)
        self.kv_heads = _layer_list(lws, "kv_heads", self.n_layers)
        for i, (q, kv) in enumerate(zip(self.q_heads, self.kv_heads)):
            if q % kv:
                raise InputError(
                    f"config: layer {i}: q_heads {q} is not a multiple of kv_heads {kv}; "
                    "GQA needs whole groups"
                )

    def describe(self):
        return (
            f"{self.block}, {self.n_layers} layers, d_model {self.d_model}, head_dim "
            f"{self.head_dim}, vocab {self.vocab_size}, qk_norm {'on' if self.qk_norm else 'off'}, "
            f"{'tied' if self.tied_embeddings else 'untied'} embeddings"
        )


def _section(config, name):
    section = config.get(name) if isinstance(config, dict) else None
    if not isinstance(section, dict):
        raise InputError(f"config: section {name!r} is missing; a resolved config has it")
    return section


def _field(section, section_name, key, kind, minimum=None):
    if key not in section:
        raise InputError(f"config: {section_name}.{key} is missing; a resolved config has it")
    value = section[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
        raise InputError(
            f"config: {section_name}.{key} = {value!r} must be of type "
            + " or ".join(k.__name__ for k in kinds)
        )
    if minimum is not None and value < minimum:
        raise InputError(f"config: {section_name}.{key} = {value} must be >= {minimum}")
    return value


def _layer_list(lws, key, n_layers):
    values = lws.get(key)
    if (
        not isinstance(values, list)
        or len(values) != n_layers
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values)
    ):
        raise InputError(
            f"config: lws.{key} = {values!r} must list one positive integer per layer "
            f"({n_layers} layers)"
        )
    return values


# ---------------------------------------------------------------------------
# Mixed precision (train.precision; docs/design.md §3).


class _Round16(torch.autograd.Function):
    """x rounded to a 16-bit dtype (held in x's dtype) in the forward, and the
    gradient rounded the same way in the backward: a tensor lws stores in 16
    bits, whose gradient it also stores in 16 bits."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = dtype
        return x.to(dtype).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype).to(grad.dtype), None


class _RoundGrad(torch.autograd.Function):
    """Identity forward; the gradient rounded to a 16-bit dtype (the fp32
    logits, whose gradient lws stores in the activations' type)."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = dtype
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad.to(ctx.dtype).to(grad.dtype), None


class Precision:
    """Where lws keeps a tensor in 16 bits (train.precision bf16 or fp16),
    the reference rounds it, forward value and gradient; everything between
    those points is computed in the model's dtype (float32 for these runs, as
    lws computes in fp32), and the master weights, gradients and AdamW stay in
    it. The block's linear layers take a 16-bit copy of the weights:

      bf16: they run under torch.autocast("cpu", bfloat16) (bf16 operands,
            a bf16 output whose gradient is bf16 too);
      fp16: PyTorch 1.13's CPU autocast has no float16, so the same rounding
            is emulated: operands and output rounded to fp16
            (x.half().float()), the gradient of the output too, the weight's
            gradient left unrounded (lws adds it into its fp32 gradient).

    Everything else lws stores in 16 bits is rounded where lws stores it
    (store()): the embedding rows, the norms' outputs (not the post-norm
    block's, which lws adds into the residual before storing, nor QK-norm's,
    which it rotates before storing), RoPE's output,
    the attention output (computed in fp32 from the rounded q, k, v), SwiGLU's
    product, each residual sum. RMSNorm statistics, softmax and the loss stay
    fp32; the head's logits are fp32 from rounded operands, their gradient
    rounded. fp32: every method is the identity, so the fp32 reference is
    unchanged."""

    def __init__(self, name="fp32"):
        if name not in ("fp32", "bf16", "fp16"):
            raise InputError(
                f"config: train.precision {name!r} is not allowed; use fp32, bf16 or fp16"
            )
        self.name = name
        self.dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(name)

    def store(self, x):
        return x if self.dtype is None else _Round16.apply(x, self.dtype)

    def weight(self, w):
        """The 16-bit copy the matmuls read; the gradient goes to the master as is."""
        return w if self.dtype is None else w + (w.to(self.dtype).to(w.dtype) - w).detach()

    def linear(self, x, w):
        if self.dtype is None:
            return F.linear(x, w)
        if self.dtype == torch.bfloat16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                y = F.linear(x, w)
            return y.to(x.dtype)
        return self.store(F.linear(x, self.weight(w)))

    def logits(self, x, w):
        if self.dtype is None:
            return F.linear(x, w)
        return _RoundGrad.apply(F.linear(x, self.weight(w)), self.dtype)


FP32 = Precision()


# ---------------------------------------------------------------------------
# The model (docs/design.md §2). Parameter names are the safetensors names.


class RMSNorm(nn.Module):
    def __init__(self, width, eps, precision=FP32):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(width))
        self.precision = precision

    def forward(self, x, stored=True):
        # (..., width): x * rsqrt(mean(x^2) + eps) * w, in the model's dtype;
        # stored=False: lws goes on in the same kernel (the residual add, RoPE),
        # so only that result is rounded to 16 bits
        y = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
        return self.precision.store(y) if stored else y


def rope_tables(seq_len, head_dim, theta, dtype):
    """cos, sin of shape (T, head_dim): position t, frequency j < head_dim/2 at
    columns j and j + head_dim/2. Angles are formed in float64."""
    half = head_dim // 2
    j = torch.arange(half, dtype=torch.float64)
    inv_freq = float(theta) ** (-2.0 * j / head_dim)  # (head_dim/2,)
    angles = torch.arange(seq_len, dtype=torch.float64)[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)  # (T, head_dim)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x (B, heads, T, head_dim): element j rotates with j + head_dim/2 ("rotate half")."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def causal_gqa_attention(q, k, v):
    """q (B, q_heads, T, hd); k, v (B, kv_heads, T, hd) -> (B, q_heads, T, hd).
    Query head h reads KV head h // group, group = q_heads / kv_heads."""
    batch, q_heads, seq, head_dim = q.shape
    kv_heads = k.shape[1]
    group = q_heads // kv_heads
    # Consecutive query heads share a KV head: view them as (kv_heads, group).
    qg = q.reshape(batch, kv_heads, group, seq, head_dim)
    scores = torch.matmul(qg, k.unsqueeze(2).transpose(-1, -2)) / math.sqrt(head_dim)
    future = torch.ones(seq, seq, dtype=torch.bool).triu(diagonal=1)  # (T, T) key after query
    scores = scores.masked_fill(future, float("-inf"))
    out = torch.matmul(torch.softmax(scores, dim=-1), v.unsqueeze(2))
    return out.reshape(batch, q_heads, seq, head_dim)


class Attention(nn.Module):
    def __init__(self, cfg, layer, precision=FP32):
        super().__init__()
        self.precision = precision
        self.q_heads, self.kv_heads = cfg.q_heads[layer], cfg.kv_heads[layer]
        self.head_dim, self.theta = cfg.head_dim, cfg.rope_theta
        q_width, kv_width = self.q_heads * cfg.head_dim, self.kv_heads * cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, q_width, bias=False)
        self.wk = nn.Linear(cfg.d_model, kv_width, bias=False)
        self.wv = nn.Linear(cfg.d_model, kv_width, bias=False)
        self.wo = nn.Linear(q_width, cfg.d_model, bias=False)
        self.q_norm = RMSNorm(q_width, cfg.norm_eps, precision) if cfg.qk_norm else None
        self.k_norm = RMSNorm(kv_width, cfg.norm_eps, precision) if cfg.qk_norm else None

    def forward(self, x):
        batch, seq, _ = x.shape
        p = self.precision
        # (B, T, q_width), (B, T, kv_width) x2
        q, k, v = (p.linear(x, lin.weight) for lin in (self.wq, self.wk, self.wv))
        if self.q_norm is not None:
            # QK-norm over the whole projection width, before splitting heads;
            # lws rotates in the same kernel, storing only the rotated q and k
            q, k = self.q_norm(q, stored=False), self.k_norm(k, stored=False)

        def heads(t, n):  # (B, T, n*hd) -> (B, n, T, hd); head h is columns h*hd .. h*hd+hd-1
            return t.view(batch, seq, n, self.head_dim).transpose(1, 2)

        q, k, v = heads(q, self.q_heads), heads(k, self.kv_heads), heads(v, self.kv_heads)
        cos, sin = rope_tables(seq, self.head_dim, self.theta, x.dtype)
        q, k = p.store(apply_rope(q, cos, sin)), p.store(apply_rope(k, cos, sin))
        out = p.store(causal_gqa_attention(q, k, v))  # (B, q_heads, T, hd)
        out = out.transpose(1, 2).reshape(batch, seq, self.q_heads * self.head_dim)
        return p.linear(out, self.wo.weight)


class SwiGLU(nn.Module):
    def __init__(self, d_model, ffn_dim, precision=FP32):
        super().__init__()
        self.w1 = nn.Linear(d_model, ffn_dim, bias=False)  # gate
        self.w3 = nn.Linear(d_model, ffn_dim, bias=False)  # up
        self.w2 = nn.Linear(ffn_dim, d_model, bias=False)  # down
        self.precision = precision

    def forward(self, x):
        p = self.precision
        gate, up = p.linear(x, self.w1.weight), p.linear(x, self.w3.weight)
        return p.linear(p.store(F.silu(gate) * up), self.w2.weight)


class Block(nn.Module):
    def __init__(self, cfg, layer, precision=FP32):
        super().__init__()
        self.post_norm = cfg.block == "post_norm"
        self.attn = Attention(cfg, layer, precision)
        self.attn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, precision)
        self.ffn = SwiGLU(cfg.d_model, cfg.ffn_dims[layer], precision)
        self.ffn_norm = RMSNorm(cfg.d_model, cfg.norm_eps, precision)
        self.precision = precision

    def forward(self, x):
        store = self.precision.store
        if self.post_norm:  # OLMo-2: the norm sits on the sublayer output, inside the residual
            h = store(x + self.attn_norm(self.attn(x), stored=False))
            return store(h + self.ffn_norm(self.ffn(h), stored=False))
        h = store(x + self.attn(self.attn_norm(x)))  # Llama: norm on the sublayer input
        return store(h + self.ffn(self.ffn_norm(h)))


class LwsModel(nn.Module):
    """Decoder-only transformer with per-layer heads and FFN widths."""

    def __init__(self, cfg, precision=FP32):
        super().__init__()
        self.cfg = cfg
        self.precision = precision
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.layers = nn.ModuleList(Block(cfg, i, precision) for i in range(cfg.n_layers))
        self.final_norm = RMSNorm(cfg.d_model, cfg.norm_eps, precision)
        self.lm_head = (
            None if cfg.tied_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        )

    def forward(self, tokens):
        """tokens (B, T) int64 -> logits (B, T, V)."""
        x = self.precision.store(self.embed(tokens))
        for layer in self.layers:
            x = layer(x)
        x = self.final_norm(x)
        head = self.embed.weight if self.lm_head is None else self.lm_head.weight
        return self.precision.logits(x, head)


def build_model(config, dtype=torch.float64):
    """The model of a resolved config (a dict), parameters initialised as lws
    does (truncated normal at +-3 std for matrices, ones for norms), in dtype."""
    cfg = config if isinstance(config, ModelConfig) else ModelConfig(config)
    model = LwsModel(cfg)
    init_params(model)
    return model.to(dtype)


def init_params(model, generator=None):
    std = model.cfg.init_std
    for name, p in model.named_parameters():
        with torch.no_grad():
            if is_norm_weight(name):
                p.fill_(1.0)
            else:
                p.copy_(_trunc_normal(p.shape, std, generator).to(p.dtype))


def _trunc_normal(shape, std, generator):
    """Normal(0, std) truncated at +-3 std: values outside are drawn again."""
    values = torch.randn(shape, dtype=torch.float64, generator=generator) * std
    outside = values.abs() > 3 * std
    while outside.any():
        redrawn = torch.randn(int(outside.sum()), dtype=torch.float64, generator=generator) * std
        values[outside] = redrawn
        outside = values.abs() > 3 * std
    return values


def is_norm_weight(name):
    return "norm" in name


def parameter_shapes(model):
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def load_params(model, tensors):
    """Copies {name: tensor} into the model, converting to its dtype. The names
    and shapes must be exactly the model's."""
    shapes = parameter_shapes(model)
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise InputError(
            f"parameters do not match the config: missing {missing or 'none'}, "
            f"unexpected {extra or 'none'}"
        )
    for name, p in model.named_parameters():
        if tuple(tensors[name].shape) != shapes[name]:
            raise InputError(
                f"parameter {name}: shape {list(tensors[name].shape)} does not match the "
                f"config's {list(shapes[name])}"
            )
        with torch.no_grad():
            p.copy_(tensors[name].to(p.dtype))


def loss_fn(logits, targets, z_loss):
    """Mean cross-entropy over all tokens, + z_loss * mean(lse^2) when z_loss > 0.
    logits (B, T, V), targets (B, T)."""
    lse = torch.logsumexp(logits, dim=-1)  # (B, T)
    target_logit = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T)
    loss = (lse - target_logit).mean()
    if z_loss > 0:
        loss = loss + z_loss * lse.pow(2).mean()
    return loss


# ---------------------------------------------------------------------------
# Checkpoints, token files, evaluation.


def find_checkpoint(path):
    """The checkpoint directory path names: itself (it holds model.safetensors),
    the directory of a model.safetensors file, or a run directory's newest
    checkpoints/step-N."""
    if os.path.isfile(path):
        return os.path.dirname(path) or "."
    if not os.path.isdir(path):
        raise InputError(f"{path}: no such checkpoint or run directory")
    if os.path.isfile(os.path.join(path, "model.safetensors")):
        return path
    steps = []
    root = os.path.join(path, "checkpoints")
    if os.path.isdir(root):
        for name in os.listdir(root):
            match = re.fullmatch(r"step-(\d+)", name)
            if match and os.path.isfile(os.path.join(root, name, "model.safetensors")):
                steps.append((int(match.group(1)), name))
    if not steps:
        raise InputError(
            f"{path} holds no checkpoint (expected model.safetensors or checkpoints/step-*/)"
        )
    return os.path.join(root, max(steps)[1])


def read_model_file(directory):
    """(tensors, resolved config dict) of DIR/model.safetensors, whose
    metadata holds the config the weights were trained with (lws_config)."""
    path = os.path.join(directory, "model.safetensors")
    tensors, metadata = read_safetensors(path)
    if "lws_config" not in metadata:
        raise InputError(f"file {path}: metadata has no lws_config")
    try:
        return tensors, json.loads(metadata["lws_config"])
    except ValueError as e:
        raise InputError(f"file {path}: lws_config is not JSON ({e})")


def load(path, dtype=torch.float32, device="cpu", precision="fp32"):
    """The model of a checkpoint (see find_checkpoint) with its weights, in
    eval mode; model.config is the resolved config (a dict), model.checkpoint
    the directory it came from. precision "bf16" or "fp16" rounds where lws
    stores 16-bit values (see Precision; dtype float32 then), as lws eval does
    for a run trained with that train.precision; "config" takes the run's."""
    directory = find_checkpoint(path)
    tensors, config = read_model_file(directory)
    if precision == "config":
        train = config.get("train")
        precision = train.get("precision", "fp32") if isinstance(train, dict) else "fp32"
    model = LwsModel(ModelConfig(config), Precision(precision))
    load_params(model, tensors)
    model = model.to(dtype=dtype, device=device).eval()
    model.config, model.checkpoint = config, directory
    return model


def read_tokens(path):
    """The tokens of an lws token file or an llm.c .bin shard as int64."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise InputError(f"file {path}: cannot read it ({e.strerror})")
    if blob[:8] == b"LWSTOKNS":
        _, width, _, header, count = struct.unpack("<IIIIQ", blob[8:32])
        offset = header
    elif len(blob) >= 1024 and struct.unpack("<i", blob[:4])[0] in (20240520, 20240801):
        magic, _, count = struct.unpack("<iii", blob[:12])
        width, offset = (2 if magic == 20240520 else 4), 1024
    else:
        raise InputError(f"file {path}: not an lws token file or an llm.c shard")
    if width not in (2, 4) or offset + count * width != len(blob):
        raise InputError(f"file {path}: its size does not match its header")
    raw = bytearray(blob[offset:])
    if width == 2:
        return torch.frombuffer(raw, dtype=torch.int16).to(torch.int64) & 0xFFFF
    return torch.frombuffer(raw, dtype=torch.int32).to(torch.int64) & 0xFFFFFFFF


def bytes_per_token(config):
    """Bytes of text each token id spells, for bits per byte: one each for the
    byte-level tokenizer, the length of each text token of an lws-bpe
    vocabulary file (special tokens spell none); None when the config names
    its tokenizer another way."""
    name = config.get("data", {}).get("tokenizer", "")
    vocab = config["model"]["vocab_size"]
    if name in ("", "bytes"):
        return torch.ones(vocab, dtype=torch.float64)
    if not name.endswith(".json") or not os.path.isfile(name):
        return None
    with open(name, encoding="utf-8") as f:
        spec = json.load(f)
    if spec.get("format") != "lws-bpe":
        return None
    lengths = torch.zeros(vocab, dtype=torch.float64)
    texts = spec["vocab"][: len(spec["vocab"]) - len(spec.get("special_tokens", []))]
    for i, token in enumerate(texts[:vocab]):
        lengths[i] = len(token)  # one character per byte (GPT-2's byte alphabet)
    return lengths


def validation_tokens(config):
    """(tokens, bytes per token or None): the split the run validated on,
    data.val or the last data.val_tokens of data.train (paths relative to the
    working directory, as in the config)."""
    data = config.get("data", {})
    if data.get("val"):
        tokens = read_tokens(data["val"])
    elif data.get("val_tokens"):
        tokens = read_tokens(data["train"])[-int(data["val_tokens"]) :]
    else:
        raise InputError("config: neither data.val nor data.val_tokens names a validation split")
    return tokens, bytes_per_token(config)


@torch.no_grad()
def evaluate(model, tokens, token_bytes=None, seq_len=None, max_tokens=None, batch=8):
    """Mean loss (nats per token) over consecutive windows of seq_len (default:
    the config's train.seq_len) + 1 tokens, every token after the first
    predicted once, as `lws eval` does: the first max_tokens (default: the
    config's eval.tokens, 0 for all), rounded up to whole windows. Returns
    (loss, predicted tokens, bits per byte or None)."""
    config = model.config
    seq_len = seq_len or config["train"]["seq_len"]
    if max_tokens is None:
        max_tokens = config.get("eval", {}).get("tokens", 0)
    windows = (len(tokens) - 1) // seq_len
    if max_tokens:
        windows = min(windows, -(-max_tokens // seq_len))
    if windows == 0:
        raise InputError(f"{len(tokens)} tokens: fewer than one window of {seq_len + 1}")
    device = next(model.parameters()).device
    loss_sum, byte_sum = 0.0, 0.0
    for first in range(0, windows, batch):
        rows = range(first, min(first + batch, windows))
        inputs = torch.stack([tokens[w * seq_len : w * seq_len + seq_len] for w in rows])
        targets = torch.stack([tokens[w * seq_len + 1 : w * seq_len + seq_len + 1] for w in rows])
        logits = model(inputs.to(device)).double()
        loss_sum += float(F.cross_entropy(logits.flatten(0, 1), targets.to(device).flatten(),
                                          reduction="sum"))
        if token_bytes is not None:
            byte_sum += float(token_bytes[targets].sum())
    count = windows * seq_len
    loss = loss_sum / count
    bpb = loss_sum / math.log(2) / byte_sum if token_bytes is not None and byte_sum > 0 else None
    return loss, count, bpb


def main(argv):
    """python/lws_torch.py CKPT [--tokens N]: the checkpoint's validation loss."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("checkpoint")
    parser.add_argument("--tokens", type=int, default=None, help="0: the whole split")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    args = parser.parse_args(argv)
    try:
        model = load(args.checkpoint, dtype=getattr(torch, args.dtype))
        tokens, token_bytes = validation_tokens(model.config)
        loss, count, bpb = evaluate(model, tokens, token_bytes, max_tokens=args.tokens)
    except InputError as e:
        print(f"lws_torch: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"checkpoint": model.checkpoint, "loss": loss, "tokens": count,
                      "perplexity": math.exp(loss), "bits_per_byte": bpb}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
