#!/usr/bin/python3
"""The independent PyTorch reference that lws is checked against.

Runs on Debian's python3-torch (CPU) with the standard library only:

    /usr/bin/python3 tests/torch_reference.py parity DIR [--dtype float64|float32]
    /usr/bin/python3 tests/torch_reference.py selftest

parity DIR compares what lws wrote into DIR with this reference:

    model.safetensors  initial parameters (F32), metadata "lws_config" = the
                       resolved config as a JSON string
    batch.safetensors  "inputs", "targets": I32 [A, B, T]  (A = grad_accum
                       micro-batches of B = micro_batch sequences of T = seq_len)
    grads.safetensors  every parameter's gradient after the first forward and
                       backward over all A micro-batches (loss = mean of the A
                       micro-batch mean losses), before clipping
    steps.json         {"losses": [N], "lrs": [N], "grad_norms": [N]} for N AdamW
                       updates on this same batch: losses[i] is the loss before
                       update i+1, lrs[i] the learning rate of update i+1,
                       grad_norms[i] the global gradient norm before clipping

Each check prints one line; the exit status is 1 when any fails. By default
the reference computes in float64 from the float32 weights, so it is the
truth the engine's float32 arithmetic is measured against.

The model follows docs/design.md §2. Other scripts reuse it:

    import tests.torch_reference as ref
    model = ref.build_model(config, dtype=torch.float32)
    ref.load_params(model, ref.read_safetensors(path)[0])
"""

import argparse
import json
import math
import os
import shutil
import sys
import tempfile

import torch
import torch.nn.functional as F

# ---------------------------------------------------------------------------
# Tolerances of the parity checks, with the reason for each.

# The initial loss is one reduction over B*T*V logits; float32 accumulation in
# the engine is good to ~1e-6 relative at the sizes parity runs use.
TOL_LOSS0 = 1e-5
# A gradient goes through every layer's backward in float32; 1e-4 relative L2
# leaves two orders of magnitude over float32 rounding and still catches a
# wrong term (a missing norm weight, a wrong RoPE pair: errors of >= 1e-2).
TOL_GRAD = 1e-4
# A gradient whose reference norm is below this fraction of the global norm is
# numerically zero; it is then compared against this floor instead of itself.
GRAD_ZERO_FLOOR = 1e-6
TOL_GRAD_NORM = 1e-4
# The schedule is closed-form arithmetic in double on both sides.
TOL_LR = 1e-6
# After N AdamW steps the float32 trajectory drifts from the float64 one: Adam
# divides by sqrt(v), which magnifies rounding in near-zero gradients.
TOL_STEP_LOSS = 1e-3


class Tolerances:
    def __init__(self, loss0, grad, grad_norm, step_loss):
        self.loss0, self.grad, self.grad_norm, self.step_loss = loss0, grad, grad_norm, step_loss


# train.precision bf16 and fp16 (Precision in python/lws_torch.py): lws and the reference
# round the same tensors at the same points, but a value computed in a
# different order (lws's tiles, PyTorch's kernels) can land on the other side
# of a 16-bit rounding boundary, which moves it by one 16-bit ulp (bf16 2^-8
# of its size, fp16 2^-11); bf16 under autocast also rounds the weight
# gradients and sums a tensor's gradient branches in bf16, which lws does in
# fp32. Worst measured on the five tiny variants (tests/cli_parity.sh, lr
# 3e-3):
#   bf16: initial loss 2.3e-5, gradients 1.7e-2 rel L2, norm 1.5e-3, the
#         losses of 10 steps 6.4e-3;
#   fp16: initial loss 1.2e-6, gradients 3.4e-3, norm 2.0e-4, losses 1.1e-3.
# The gradient and norm bounds leave a factor of 3 to 10 over those and stay
# well below a wrong term (>= 1e-1 in a gradient); the losses of the 10 steps
# are held to 1e-2 relative, the bound mixed precision is asked to meet. (At
# the fp32 run's lr 1e-2, one batch repeated makes the trajectory chaotic: a
# 16-bit rounding difference then moves an intermediate loss by up to 6%.)
TOLERANCES = {
    "fp32": Tolerances(TOL_LOSS0, TOL_GRAD, TOL_GRAD_NORM, TOL_STEP_LOSS),
    "bf16": Tolerances(2e-4, 5e-2, 1e-2, 1e-2),
    "fp16": Tolerances(2e-5, 1e-2, 2e-3, 1e-2),
}


# The model, its config and safetensors live in python/lws_torch.py, the
# loader researchers use; the checks below run against that same model.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import lws_torch  # noqa: E402
from lws_torch import (  # noqa: E402
    InputError,
    read_safetensors,
    write_safetensors,
    ModelConfig,
    _section,
    _field,
    rope_tables,
    apply_rope,
    causal_gqa_attention,
    LwsModel,
    Precision,
    build_model,
    init_params,
    is_norm_weight,
    load_params,
    loss_fn,
)

# ---------------------------------------------------------------------------
# Training: schedule, parameter groups, steps.


class TrainConfig:
    def __init__(self, config):
        train = _section(config, "train")
        num = (int, float)
        self.steps = _field(train, "train", "steps", int, minimum=1)
        self.lr = float(_field(train, "train", "lr", num))
        self.schedule = _field(train, "train", "schedule", str)
        self.warmup_steps = _field(train, "train", "warmup_steps", int, minimum=0)
        self.beta1 = float(_field(train, "train", "beta1", num))
        self.beta2 = float(_field(train, "train", "beta2", num))
        self.eps = float(_field(train, "train", "eps", num))
        self.weight_decay = float(_field(train, "train", "weight_decay", num))
        self.decay_embeddings = _field(train, "train", "decay_embeddings", bool)
        self.decay_norms = _field(train, "train", "decay_norms", bool)
        self.grad_clip = float(_field(train, "train", "grad_clip", num))
        self.z_loss = float(train.get("z_loss", 0.0))
        if self.schedule not in ("constant", "cosine", "wsd"):
            raise InputError(
                f"config: train.schedule {self.schedule!r} is not allowed; "
                "use constant, cosine or wsd"
            )
        # min_lr_ratio and decay_fraction only matter to the schedules that use them
        self.min_lr_ratio = float(
            _field(train, "train", "min_lr_ratio", num) if self.schedule != "constant" else 0.0
        )
        self.decay_fraction = float(
            _field(train, "train", "decay_fraction", num) if self.schedule == "wsd" else 0.0
        )


def learning_rate(train, s):
    """The learning rate of update s = 1 .. train.steps."""
    peak, warmup, steps = train.lr, train.warmup_steps, train.steps
    if s <= warmup:
        return peak * s / warmup
    if train.schedule == "constant":
        return peak
    minimum = peak * train.min_lr_ratio
    if train.schedule == "cosine":
        progress = (s - warmup) / (steps - warmup)
        return minimum + (peak - minimum) * 0.5 * (1.0 + math.cos(math.pi * progress))
    # wsd; the decay length rounds half away from zero, as C's round() does
    decay_steps = int(math.floor(train.decay_fraction * steps + 0.5))
    stable_end = steps - decay_steps
    if s <= stable_end:
        return peak
    return peak + (minimum - peak) * (s - stable_end) / decay_steps


def make_optimizer(model, train):
    """torch AdamW with two groups: decayed matrices, and the embedding (unless
    decay_embeddings) and norm weights (unless decay_norms) without decay. An
    untied lm_head is a matrix like the others; a tied one is the embedding."""
    decayed, plain = [], []
    for name, p in model.named_parameters():
        exempt = (name == "embed.weight" and not train.decay_embeddings) or (
            is_norm_weight(name) and not train.decay_norms
        )
        (plain if exempt else decayed).append(p)
    groups = [
        {"params": decayed, "weight_decay": train.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        [g for g in groups if g["params"]],
        lr=train.lr,
        betas=(train.beta1, train.beta2),
        eps=train.eps,
    )


def forward_backward(model, inputs, targets, z_loss, loss_scale=1.0):
    """inputs, targets (A, B, T): accumulates the gradient of the mean of the A
    micro-batch mean losses into .grad; returns that loss and the global norm.
    loss_scale (fp16, a power of two): the backward runs on the loss times it,
    as lws's does, and the gradients are divided by it after (exactly)."""
    model.zero_grad(set_to_none=True)
    accum = inputs.shape[0]
    total = 0.0
    for a in range(accum):
        loss = loss_fn(model(inputs[a]), targets[a], z_loss) / accum
        (loss * loss_scale).backward()
        total += loss.item()
    grads = [p.grad for p in model.parameters()]
    if loss_scale != 1.0:
        for g in grads:
            g.div_(loss_scale)
    norm = math.sqrt(sum(float(g.double().pow(2).sum()) for g in grads))
    return total, norm


def run_steps(model, inputs, targets, train, n_steps, loss_scale=1.0):
    """n_steps AdamW updates on the same batch. Returns (losses, grad_norms, lrs,
    first_grads): losses[i] before update i+1, first_grads before any clipping."""
    optimizer = make_optimizer(model, train)
    losses, norms, lrs, first_grads = [], [], [], None
    for i in range(n_steps):
        loss, norm = forward_backward(model, inputs, targets, train.z_loss, loss_scale)
        if first_grads is None:
            first_grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        if train.grad_clip > 0:
            # scales by grad_clip / (norm + 1e-6) when that is below 1 (torch's rule)
            torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        lr = learning_rate(train, i + 1)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.step()
        losses.append(loss)
        norms.append(norm)
        lrs.append(lr)
    return losses, norms, lrs, first_grads


# ---------------------------------------------------------------------------
# parity DIR


class Report:
    """Collects checks; each prints one line."""

    def __init__(self, out=sys.stdout, verbose=True):
        self.out, self.verbose = out, verbose
        self.results = []  # (name, passed, measured error / tolerance or None)

    def check(self, name, passed, detail, ratio=None):
        self.results.append((name, bool(passed), ratio))
        if self.out is not None and (self.verbose or not passed):
            print(f"{'PASS' if passed else 'FAIL'}  {name:<40} {detail}", file=self.out)
        return passed

    def close(self, name, got, want, tol):
        rel = _relative(got, want)
        detail = f"lws {got:.10g} ref {want:.10g} rel {rel:.2e} (tol {tol:.0e})"
        return self.check(name, rel <= tol, detail, rel / tol)

    def info(self, text):
        if self.out is not None and self.verbose:
            print(f"      {text}", file=self.out)

    @property
    def failed(self):
        return [name for name, passed, _ in self.results if not passed]

    def worst(self, prefix):
        """The largest measured error / tolerance among checks named prefix*."""
        ratios = [r for name, _, r in self.results if name.startswith(prefix) and r is not None]
        return max(ratios, default=0.0)


def _relative(got, want):
    if not (math.isfinite(got) and math.isfinite(want)):
        return math.inf
    if got == want:
        return 0.0
    return abs(got - want) / abs(want) if want != 0 else math.inf


def _load_steps(path):
    try:
        with open(path) as f:
            steps = json.load(f)
    except OSError as e:
        raise InputError(f"file {path}: cannot read it ({e.strerror})")
    except ValueError as e:
        raise InputError(f"file {path}: not JSON ({e})")
    lists = {}
    # grad_norms may hold null: an fp16 update skipped for an overflow.
    # loss_scales (fp16 runs) is optional.
    for key in ("losses", "lrs", "grad_norms", "loss_scales"):
        values = steps.get(key) if isinstance(steps, dict) else None
        if key == "loss_scales" and values is None:
            continue
        nullable = key == "grad_norms"
        if not isinstance(values, list) or not values or not all(
            (isinstance(v, (int, float)) and not isinstance(v, bool)) or (nullable and v is None)
            for v in values
        ):
            raise InputError(f"file {path}: {key!r} must be a non-empty list of numbers")
        lists[key] = [math.nan if v is None else float(v) for v in values]
    if len({len(v) for v in lists.values()}) != 1:
        lengths = {k: len(v) for k, v in lists.items()}
        raise InputError(f"file {path}: the lists of steps differ in length {lengths}")
    return lists


# (g): measured 0.46-0.48 (lws's error against its own precision's reference
# over that against the fp32 one, both global relative L2), 1.0 for lws in
# fp32 checked as bf16.
NEARER_RATIO = 0.75


def _global_rel(got, want):
    diff = sum(float((got[n].double() - want[n].double()).pow(2).sum()) for n in want)
    size = sum(float(want[n].double().pow(2).sum()) for n in want)
    return math.sqrt(diff / size) if size > 0 else math.inf


def _check_nearer(report, cfg, tensors, inputs, targets, train, lws_grads, ref_grads):
    fp32 = LwsModel(cfg).to(torch.float64)
    load_params(fp32, tensors)
    forward_backward(fp32, inputs, targets, train.z_loss)
    fp32_grads = {n: p.grad for n, p in fp32.named_parameters()}
    own, other = _global_rel(lws_grads, ref_grads), _global_rel(lws_grads, fp32_grads)
    ratio = own / other if other > 0 else math.inf
    report.check(
        "(g) nearer its precision than fp32",
        ratio <= NEARER_RATIO,
        f"gradients rel L2 {own:.2e} to this reference, {other:.2e} to fp32's: ratio "
        f"{ratio:.2f} (at most {NEARER_RATIO})",
        ratio / NEARER_RATIO,
    )


def parity(directory, dtype=torch.float64, report=None):
    """Checks DIR against the reference; returns the Report."""
    report = report or Report()
    try:
        _parity(directory, dtype, report)
    except InputError as e:
        report.check("inputs readable", False, str(e))
    return report


def _parity(directory, dtype, report):
    tensors, config = lws_torch.read_model_file(directory)
    cfg, train = ModelConfig(config), TrainConfig(config)
    batch, _ = read_safetensors(os.path.join(directory, "batch.safetensors"))
    lws_grads, _ = read_safetensors(os.path.join(directory, "grads.safetensors"))
    steps = _load_steps(os.path.join(directory, "steps.json"))
    n_steps = len(steps["losses"])

    for key in ("inputs", "targets"):
        if key not in batch or batch[key].dim() != 3 or batch[key].dtype != torch.int32:
            raise InputError(
                f"file {directory}/batch.safetensors: {key!r} must be I32 [A, B, T]"
            )
    inputs, targets = batch["inputs"].long(), batch["targets"].long()
    if inputs.shape != targets.shape:
        raise InputError(
            f"file {directory}/batch.safetensors: inputs {list(inputs.shape)} and targets "
            f"{list(targets.shape)} differ in shape"
        )
    for key, t in (("inputs", inputs), ("targets", targets)):
        if t.numel() and (t.min() < 0 or t.max() >= cfg.vocab_size):
            raise InputError(
                f"file {directory}/batch.safetensors: {key} holds tokens outside "
                f"[0, {cfg.vocab_size}) (vocab_size)"
            )
    train_section = _section(config, "train")
    precision = Precision(train_section.get("precision", "fp32"))
    tol = TOLERANCES[precision.name]
    if precision.dtype is not None:
        # lws computes in fp32 between the 16-bit points, and autocast needs
        # float32 operands.
        dtype = torch.float32
    how = {
        "fp32": "",
        "bf16": ", train.precision bf16 (torch.autocast bf16 and lws's 16-bit points)",
        "fp16": ", train.precision fp16 (lws's fp16 points emulated)",
    }[precision.name]
    report.info(
        f"{directory}: {cfg.describe()}; batch A={inputs.shape[0]} B={inputs.shape[1]} "
        f"T={inputs.shape[2]}; {n_steps} steps, {train.schedule} schedule; reference in "
        f"{str(dtype).replace('torch.', '')}{how}"
    )
    expected = [
        _field(train_section, "train", k, int) for k in ("grad_accum", "micro_batch", "seq_len")
    ]
    report.check(
        "batch shape",
        list(inputs.shape) == expected,
        f"{list(inputs.shape)} vs [grad_accum, micro_batch, seq_len] = {expected}",
    )

    report.check(
        "steps within the schedule",
        n_steps <= train.steps,
        f"steps.json has {n_steps} updates, train.steps is {train.steps}",
    )

    loss_scale = 1.0
    if precision.name == "fp16":
        loss_scale = float(train_section.get("loss_scale", 65536))
        scales = steps.get("loss_scales", [])
        report.check(
            "(f) fp16 loss scale held",
            all(s == loss_scale for s in scales),
            f"lws's loss scale over the steps {sorted(set(scales))}, config {loss_scale:g}: an "
            "overflow (a skipped update) is not followed by the reference; choose a smaller "
            "train.loss_scale",
        )
    model = LwsModel(cfg, precision).to(dtype)
    load_params(model, tensors)
    losses, norms, lrs, ref_grads = run_steps(model, inputs, targets, train, n_steps, loss_scale)

    # (a) initial loss
    report.close("(a) initial loss", steps["losses"][0], losses[0], tol.loss0)

    # (b) every gradient; a numerically zero one against a floor from the global norm
    missing = sorted(set(ref_grads) - set(lws_grads))
    extra = sorted(set(lws_grads) - set(ref_grads))
    report.check(
        "(b) gradient names",
        not missing and not extra,
        f"missing {missing or 'none'}, unexpected {extra or 'none'}",
    )
    floor = GRAD_ZERO_FLOOR * norms[0]
    for name, want in ref_grads.items():
        if name not in lws_grads:
            continue
        got = lws_grads[name]
        if tuple(got.shape) != tuple(want.shape):
            detail = f"shape {list(got.shape)} vs {list(want.shape)}"
            report.check(f"(b) grad {name}", False, detail)
            continue
        diff = float((got.double() - want.double()).norm())
        ref_norm = float(want.double().norm())
        if ref_norm > floor:
            rel = diff / ref_norm if math.isfinite(diff) else math.inf
            detail = f"rel L2 {rel:.2e} (tol {tol.grad:.0e}), |g_ref| {ref_norm:.3e}"
        else:
            if diff == 0:
                rel = 0.0
            else:
                rel = diff / floor if floor > 0 and math.isfinite(diff) else math.inf
            detail = (
                f"|g_ref| {ref_norm:.1e} ~ 0: |diff| {diff:.2e} against {GRAD_ZERO_FLOOR:.0e} x "
                f"global norm = {floor:.2e}, ratio {rel:.2e} (tol {tol.grad:.0e})"
            )
        report.check(f"(b) grad {name}", rel <= tol.grad, detail, rel / tol.grad)

    # (g) 16-bit runs: the gradients are nearer this precision's reference
    # than fp32's (a 16-bit error is not within every tolerance above by
    # itself: lws computing in fp32 instead would pass (b))
    if precision.dtype is not None and not missing and not extra:
        _check_nearer(report, model.cfg, tensors, inputs, targets, train, lws_grads, ref_grads)

    # (c) global gradient norm of the first step
    report.close("(c) grad_norm[0]", steps["grad_norms"][0], norms[0], tol.grad_norm)

    # (d) the schedule, computed here independently of the engine
    for i, (got, want) in enumerate(zip(steps["lrs"], lrs)):
        if want != 0:
            report.close(f"(d) lr of update {i + 1}", got, want, TOL_LR)
        else:
            bound = TOL_LR * train.lr
            report.check(
                f"(d) lr of update {i + 1}",
                abs(got) <= bound,
                f"lws {got:.10g} ref 0: absolute bound {TOL_LR:.0e} x peak = {bound:.1e}",
            )

    # (e) the loss trajectory of N AdamW steps
    for i, (got, want) in enumerate(zip(steps["losses"], losses)):
        report.close(f"(e) loss before update {i + 1}", got, want, tol.step_loss)
    worst = max(_relative(g, w) for g, w in zip(steps["grad_norms"], norms))
    report.info(
        f"grad_norms over all {n_steps} steps: worst relative difference {worst:.2e} "
        "(not a check: later norms follow the drifting trajectory)"
    )


# ---------------------------------------------------------------------------
# selftest: the checker on synthetic directories, which it must pass, and on
# corrupted copies, which it must fail.


def synthetic_config(block, tied, qk_norm, variant):
    """A tiny config with a layer of every GQA grouping (1, 2, 3)."""
    schedule = ("cosine", "wsd", "constant")[variant % 3]
    return {
        "name": f"selftest-{block}-{'tied' if tied else 'untied'}-qk{int(qk_norm)}",
        "model": {
            "d_model": 24,
            "n_layers": 3,
            "head_dim": 8,
            "vocab_size": 61,  # prime: no tile divides it
            "block": block,
            "tied_embeddings": tied,
            "rope_theta": 500000 if variant % 2 else 10000.0,
            "norm_eps": 1e-6,
            "qk_norm": qk_norm,
            "init_std": 0.02,
        },
        "lws": {"ffn_dims": [40, 72, 24], "q_heads": [4, 2, 6], "kv_heads": [2, 2, 2]},
        "train": {
            "seq_len": 7,
            "micro_batch": 2,
            "grad_accum": 3,
            "steps": 16,
            "lr": 1e-2,
            "min_lr_ratio": 0.1,
            "schedule": schedule,
            "warmup_steps": 3,
            "decay_fraction": 0.3,  # 4.8 -> 5 decay steps
            "beta1": 0.9,
            "beta2": 0.95,
            "eps": 1e-8,
            "weight_decay": 0.1,
            "decay_embeddings": variant % 2 == 1,
            "decay_norms": variant % 4 == 2,
            # clipping active in most variants (the initial norm is ~1), off in one
            "grad_clip": 0.0 if variant % 4 == 3 else 0.25,
            "z_loss": 1e-3 if variant % 2 else 0.0,
            "seed": 42,
        },
        "data": {},
        "eval": {},
    }


def write_synthetic_dir(directory, config, dtype, n_steps=10, seed=0):
    """What lws would write, computed by this reference in dtype."""
    cfg, train = ModelConfig(config), TrainConfig(config)
    generator = torch.Generator().manual_seed(seed)
    model = LwsModel(cfg)
    init_params(model, generator)
    with torch.no_grad():
        # norm weights away from 1, so a norm applied with the wrong weight shows
        for name, p in model.named_parameters():
            if is_norm_weight(name):
                p.add_(0.2 * torch.randn(p.shape, generator=generator))
    params = {n: p.detach().float() for n, p in model.named_parameters()}
    write_safetensors(
        os.path.join(directory, "model.safetensors"), params, {"lws_config": json.dumps(config)}
    )
    t = config["train"]
    shape = (t["grad_accum"], t["micro_batch"], t["seq_len"])
    tokens = torch.randint(0, cfg.vocab_size, shape, generator=generator, dtype=torch.int32)
    targets = torch.randint(0, cfg.vocab_size, shape, generator=generator, dtype=torch.int32)
    write_safetensors(
        os.path.join(directory, "batch.safetensors"), {"inputs": tokens, "targets": targets}
    )
    model = LwsModel(cfg).to(dtype)
    load_params(model, params)
    losses, norms, lrs, grads = run_steps(model, tokens.long(), targets.long(), train, n_steps)
    write_safetensors(
        os.path.join(directory, "grads.safetensors"), {n: g.float() for n, g in grads.items()}
    )
    with open(os.path.join(directory, "steps.json"), "w") as f:
        json.dump({"losses": losses, "lrs": lrs, "grad_norms": norms}, f)
    return losses, norms


class SelfTest:
    def __init__(self):
        self.failures = 0
        self.checks = 0

    def expect(self, name, passed, detail=""):
        self.checks += 1
        if not passed:
            self.failures += 1
        print(f"{'ok  ' if passed else 'FAIL'}  {name}{': ' + detail if detail else ''}")
        return passed


def selftest_rope(t):
    # 2 positions, head_dim 4, theta 10000: inv_freq = [1, 10000^-0.5 = 0.01]. Pairs
    # (0, 2) turn by angle pos*1, (1, 3) by pos*0.01. For x = [1, 2, 3, 4] at position 1:
    #   out0 = 1 cos 1 - 3 sin 1       out2 = 3 cos 1 + 1 sin 1
    #   out1 = 2 cos .01 - 4 sin .01   out3 = 4 cos .01 + 2 sin .01
    # Position 0 is unchanged.
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    want = torch.tensor(
        [
            [1.0, 2.0, 3.0, 4.0],
            [-1.9841106485555495, 1.959900667496664, 2.4623779024123156, 4.019799668334994],
        ],
        dtype=torch.float64,
    )
    cos, sin = rope_tables(2, 4, 10000, torch.float64)
    got = apply_rope(x.view(1, 1, 2, 4), cos, sin).view(2, 4)
    err = float((got - want).abs().max())
    # the literals carry ~16 digits: 1e-12 is rounding, any pairing error is O(1)
    t.expect("rope: rotate-half pairing, 2 positions x head_dim 4", err < 1e-12, f"err {err:.1e}")


def selftest_attention(t):
    # The grouped, broadcast attention against a loop over query heads with an
    # explicit additive causal mask, for groups 1, 2, 3 and 6.
    generator = torch.Generator().manual_seed(1)
    for q_heads, kv_heads in ((3, 3), (4, 2), (6, 2), (6, 1)):
        batch, seq, head_dim = 2, 5, 6
        q = torch.randn(batch, q_heads, seq, head_dim, generator=generator, dtype=torch.float64)
        k = torch.randn(batch, kv_heads, seq, head_dim, generator=generator, dtype=torch.float64)
        v = torch.randn(batch, kv_heads, seq, head_dim, generator=generator, dtype=torch.float64)
        mask = torch.zeros(seq, seq, dtype=torch.float64)
        for i in range(seq):
            for j in range(i + 1, seq):
                mask[i, j] = float("-inf")
        group = q_heads // kv_heads
        want = torch.empty_like(q)
        for h in range(q_heads):
            kh, vh = k[:, h // group], v[:, h // group]
            scores = q[:, h] @ kh.transpose(-1, -2) / math.sqrt(head_dim) + mask
            want[:, h] = torch.softmax(scores, dim=-1) @ vh
        got = causal_gqa_attention(q, k, v)
        err = float((got - want).abs().max())
        heads = f"q_heads {q_heads} kv_heads {kv_heads}"
        # float64, same operations in another grouping: only rounding differs
        t.expect(f"attention vs naive masked loop, {heads}", err < 1e-12, f"max err {err:.1e}")
        if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
            expanded = lambda x: x.repeat_interleave(group, dim=1)
            sdpa = F.scaled_dot_product_attention(q, expanded(k), expanded(v), attn_mask=mask)
            err = float((got - sdpa).abs().max())
            t.expect(f"attention vs torch sdpa, {heads}", err < 1e-12, f"max err {err:.1e}")
    # The first query sees only the first key: its output is v[0] exactly (last case: group 6).
    got = causal_gqa_attention(q, k, v)
    err = float((got[:, :, 0] - v[:, :, 0].repeat_interleave(group, dim=1)).abs().max())
    t.expect("attention: position 0 attends to itself only", err < 1e-15, f"max err {err:.1e}")


def selftest_schedule(t):
    # Hand-computed values (peak 1e-2, min 1e-3, warmup 3, 16 steps).
    base = synthetic_config("post_norm", False, True, 0)["train"]
    cases = [
        ("cosine", {}, 1, 1e-2 / 3),  # warmup: peak * 1/3
        ("cosine", {}, 3, 1e-2),  # last warmup step: the peak
        ("cosine", {}, 8, 1e-3 + 9e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 13))),  # progress 5/13
        ("cosine", {}, 16, 1e-3),  # progress 1: the minimum
        ("cosine", {"warmup_steps": 0}, 1, 1e-3 + 9e-3 * 0.5 * (1 + math.cos(math.pi / 16))),
        ("constant", {}, 2, 1e-2 * 2 / 3),
        ("constant", {}, 16, 1e-2),
        ("wsd", {}, 11, 1e-2),  # decay round(0.3 * 16 = 4.8) = 5 steps: stable through 11
        ("wsd", {}, 12, 1e-2 - 9e-3 / 5),
        ("wsd", {}, 16, 1e-3),
        # 0.25 * 10 = 2.5 rounds away from zero to 3 decay steps (C round(), not banker's)
        ("wsd", {"steps": 10, "decay_fraction": 0.25}, 7, 1e-2),
        ("wsd", {"steps": 10, "decay_fraction": 0.25}, 8, 1e-2 - 9e-3 / 3),
    ]
    worst = 0.0
    for schedule, overrides, s, want in cases:
        train = TrainConfig({"train": dict(base, schedule=schedule, **overrides)})
        worst = max(worst, _relative(learning_rate(train, s), want))
    what = "schedule: hand-computed warmup, cosine, constant, wsd values"
    t.expect(what, worst < 1e-14, f"worst rel {worst:.1e}")


def design_parameter_count(config):
    """docs/design.md §1.2: 2*V*d (embedding + head) + d (final norm) + per layer
    d*q*2 + d*kv*2 (q, k, v, o with q/kv the widths) + q + kv (QK-norm) + 2d + 3*d*d_ffn."""
    m, lws = config["model"], config["lws"]
    d, hd = m["d_model"], m["head_dim"]
    count = (1 if m["tied_embeddings"] else 2) * m["vocab_size"] * d + d
    for ffn, q_heads, kv_heads in zip(lws["ffn_dims"], lws["q_heads"], lws["kv_heads"]):
        q, kv = q_heads * hd, kv_heads * hd
        count += d * q * 2 + d * kv * 2 + (q + kv if m["qk_norm"] else 0) + 2 * d + 3 * d * ffn
    return count


def selftest_parameters(t):
    # The formula against the paper's crown-18l count (docs/design.md §1.2: 181,906,688).
    crown = {
        "model": {"d_model": 768, "head_dim": 64, "vocab_size": 50304, "tied_embeddings": False,
                  "qk_norm": True},
        "lws": {
            "ffn_dims": [3072, 768, 1024, 1280, 1536, 2048, 2304, 2560, 2816,
                         2816, 2560, 2304, 2048, 1536, 1280, 1024, 768, 3072],
            "q_heads": [12, 9, 9, 9, 9, 9, 12, 12, 12, 12, 12, 12, 9, 9, 9, 9, 9, 12],
        },
    }  # fmt: skip
    crown["lws"]["kv_heads"] = [q // 3 for q in crown["lws"]["q_heads"]]  # group 3
    count = design_parameter_count(crown)
    t.expect("parameter formula: crown-18l has 181,906,688", count == 181906688, f"{count:,}")
    # build_model's tensors against the formula, for each block option that changes them
    for tied in (False, True):
        for qk_norm in (False, True):
            config = synthetic_config("pre_norm", tied, qk_norm, 0)
            model = build_model(config, dtype=torch.float32)
            got = sum(p.numel() for p in model.parameters())
            want = design_parameter_count(config)
            logits = model(torch.zeros(2, 5, dtype=torch.long))
            ok = got == want and tuple(logits.shape) == (2, 5, 61)
            t.expect(
                f"build_model: tied {tied}, qk_norm {qk_norm}: parameters and logits shape",
                ok,
                f"{got} parameters (formula {want}), logits {list(logits.shape)}",
            )


def selftest_safetensors(t, directory):
    path = os.path.join(directory, "roundtrip.safetensors")
    tensors = {
        "f64": torch.tensor([[1.5, -2.25e-300]], dtype=torch.float64),
        "f32": torch.tensor([3.0, -0.0, 1e-38], dtype=torch.float32),
        "i64": torch.tensor([-(2**62), 7], dtype=torch.int64),
        "i32": torch.tensor([[-5], [2**31 - 1]], dtype=torch.int32),
        "u32": torch.tensor([0, 2**32 - 1, 2**31], dtype=torch.int64),
        "u8": torch.tensor([0, 255], dtype=torch.uint8),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    write_safetensors(path, tensors, {"lws_config": '{"a": 1}'}, dtypes={"u32": "U32"})
    back, metadata = read_safetensors(path)
    same = set(back) == set(tensors) and all(
        back[n].dtype == tensors[n].dtype
        and back[n].shape == tensors[n].shape
        and torch.equal(back[n], tensors[n])
        for n in tensors
    )
    same = same and metadata == {"lws_config": '{"a": 1}'}
    t.expect("safetensors: round trip of F64 F32 I64 I32 U32 U8, an empty tensor, metadata", same)
    with open(path, "rb") as f:
        blob = f.read()
    with open(path, "wb") as f:
        f.write(blob[:-1])
    try:
        read_safetensors(path)
        refused = False
    except InputError:
        refused = True
    t.expect("safetensors: a truncated file is refused", refused)


def _copy_dir(src, dst):
    shutil.copytree(src, dst)
    return dst


def selftest(verbose_first=True):
    torch.set_num_threads(1)  # tiny tensors: threads only add overhead on a shared machine
    t = SelfTest()
    selftest_rope(t)
    selftest_attention(t)
    selftest_schedule(t)
    selftest_parameters(t)
    root = tempfile.mkdtemp(prefix="lws-torch-ref-", dir=os.environ.get("LWS_TEST_DIR") or None)
    try:
        selftest_safetensors(t, root)
        variant = 0
        for block in ("post_norm", "pre_norm"):
            for tied in (False, True):
                for qk_norm in (True, False):
                    config = synthetic_config(block, tied, qk_norm, variant)
                    _selftest_config(t, root, config, variant, verbose_first and variant == 0)
                    variant += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"selftest: {t.checks} checks, {t.failures} failed")
    return 1 if t.failures else 0


def _selftest_config(t, root, config, variant, verbose):
    name = config["name"] + f"-{config['train']['schedule']}"
    directory = os.path.join(root, name)
    os.makedirs(directory)
    losses, norms = write_synthetic_dir(directory, config, torch.float64, seed=variant)
    t.expect(
        f"{name}: loss moves over the steps",
        losses[-1] < losses[0] - 0.05,
        f"{losses[0]:.4f} -> {losses[-1]:.4f}, grad norm {norms[0]:.3f}",
    )
    report = parity(directory, torch.float64, Report(verbose=verbose))
    t.expect(
        f"{name}: parity of its own float64 run passes",
        not report.failed,
        f"{len(report.results)} checks, failed {report.failed or 'none'}",
    )
    if variant == 0:
        report = parity(directory, torch.float32, Report(out=None))
        t.expect(
            f"{name}: a float32 reference passes it too",
            not report.failed,
            f"failed {report.failed or 'none'}",
        )

    # what a float32 engine would write must pass the float64 reference, with room
    f32_dir = os.path.join(root, name + "-f32")
    os.makedirs(f32_dir)
    write_synthetic_dir(f32_dir, config, torch.float32, seed=variant)
    report = parity(f32_dir, torch.float64, Report(out=None))
    headroom = ", ".join(
        f"{label} {report.worst(prefix):.0e}"
        for label, prefix in (("loss", "(a)"), ("grads", "(b)"), ("norm", "(c)"), ("steps", "(e)"))
    )
    t.expect(
        f"{name}: float32 run passes the float64 reference",
        not report.failed,
        f"failed {report.failed or 'none'}; worst error / tolerance: {headroom}",
    )

    # a gradient off by 1%: exactly that check must fail
    victims = ("layers.1.attn.wk.weight", "layers.2.ffn.w2.weight", "embed.weight")
    victim = (victims + ("final_norm.weight",))[variant % 4]
    corruptions = [
        (
            f"grad {victim} x 1.01",
            [f"(b) grad {victim}"],
            lambda d: _scale_tensor(os.path.join(d, "grads.safetensors"), victim, 1.01),
        )
    ]
    if variant == 0:
        corruptions += [
            ("loss before update 5 x 1.01", ["(e) loss before update 5"],
             lambda d: _edit_steps(d, "losses", 4, 1.01)),
            ("lr of update 2 x 1.00001", ["(d) lr of update 2"],
             lambda d: _edit_steps(d, "lrs", 1, 1.00001)),
            ("grad_norms[0] x 1.001", ["(c) grad_norm[0]"],
             lambda d: _edit_steps(d, "grad_norms", 0, 1.001)),
            # the same files read as another model must not pass
            ("config says pre_norm", None,
             lambda d: _edit_config(d, lambda c: c["model"].update(block="pre_norm"))),
            ("rope_theta 500000 instead of 10000", None,
             lambda d: _edit_config(d, lambda c: c["model"].update(rope_theta=500000))),
        ]  # fmt: skip
    for what, expected_failures, corrupt in corruptions:
        _expect_caught(t, name, directory, root, what, expected_failures, corrupt)


def _expect_caught(t, name, directory, root, what, expected_failures, corrupt):
    bad = os.path.join(root, f"{os.path.basename(directory)}-bad-{len(os.listdir(root))}")
    _copy_dir(directory, bad)
    corrupt(bad)
    report = parity(bad, torch.float64, Report(out=None))
    if expected_failures is None:  # a different model: the loss and every gradient differ
        caught = "(a) initial loss" in report.failed and len(report.failed) > 10
        detail = f"{len(report.failed)} of {len(report.results)} checks failed"
    else:  # exactly the corrupted value's check
        caught = report.failed == expected_failures
        detail = f"failed {report.failed}"
    t.expect(f"{name}: corrupted ({what}) fails", caught, detail)


def _scale_tensor(path, name, factor):
    tensors, metadata = read_safetensors(path)
    tensors[name] = tensors[name] * factor
    write_safetensors(path, tensors, metadata)


def _edit_steps(directory, key, index, factor):
    path = os.path.join(directory, "steps.json")
    with open(path) as f:
        steps = json.load(f)
    steps[key][index] *= factor
    with open(path, "w") as f:
        json.dump(steps, f)


def _edit_config(directory, edit):
    path = os.path.join(directory, "model.safetensors")
    tensors, metadata = read_safetensors(path)
    config = json.loads(metadata["lws_config"])
    edit(config)
    metadata["lws_config"] = json.dumps(config)
    write_safetensors(path, tensors, metadata)


# ---------------------------------------------------------------------------


def main(argv):
    parser = argparse.ArgumentParser(description="PyTorch reference for lws")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("parity", help="check a directory written by lws against the reference")
    p.add_argument("dir")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="precision of the reference (default float64: the truth)")
    sub.add_parser("selftest", help="prove the checker passes good runs and fails bad ones")
    args = parser.parse_args(argv)
    if args.mode == "selftest":
        return selftest()
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    report = parity(args.dir, dtype)
    print(f"parity: {len(report.results)} checks, {len(report.failed)} failed")
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
