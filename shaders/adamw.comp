#version 460
#extension GL_GOOGLE_include_directive : require
// AdamW over every tensor of the optimizer table; workgroup c updates chunk c
// (LWS_OPTIM_CHUNK elements of one tensor). PyTorch's torch.optim.AdamW
// (1.13, single-tensor path), operation by operation:
//   g = grad * clip_scale                        (clip_grad_norm_'s grad.mul_)
//   p = p * (1 - lr * wd)            if decay    (param.mul_)
//   m = fma(g, 1 - b1, m * b1)                   (exp_avg.mul_(b1).add_(g, alpha=1-b1))
//   v = fma((1 - b2) * g, g, v * b2)             (exp_avg_sq.mul_(b2).addcmul_(g, g, value=1-b2))
//   denom = sqrt(v) / sqrt(bc2) + eps
//   p = p + (-lr / bc1) * m / denom              (param.addcdiv_(m, denom, value=-lr/bc1))
//   grad = 0                                     (the next accumulation starts from zero)
// A gradient norm that is not finite (grad_norm.comp: an fp16 overflow) skips
// the update: parameters and moments stay, the gradients are zeroed. clip_scale
// includes 1 / loss_scale where the gradients carry a loss scale.
// The hyperparameters are read from the hyper buffer at run time, so one
// recorded command buffer serves every step. `precise` keeps each rounding
// where PyTorch's CPU kernels put it (no contraction into other FMAs). Vulkan
// lets a driver compute fma() as a multiply then an add (lavapipe does): there
// step 1 matches PyTorch bit for bit, and later steps differ from it only by
// those roundings of m and v (p after 5 steps: 99% bit-identical, the rest
// within 1.2e-7).
#include "lws.glsl"
#include "adamw.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    OptimHyper hyper;
    OptimTable table;
    uint n_tensors;
    uint total_chunks;
    uint chunk; // LWS_OPTIM_CHUNK
} pc;

void main() {
    uint c = gl_WorkGroupID.x;
    OptimEntry e = pc.table.e[optim_find_entry(pc.table, pc.n_tensors, c)];
    Floats param = Floats(e.param), grad = Floats(e.grad), exp_avg = Floats(e.m),
           exp_avg_sq = Floats(e.v);

    float lr = pc.hyper.lr, beta1 = pc.hyper.beta1, beta2 = pc.hyper.beta2;
    float eps = pc.hyper.eps, clip_scale = pc.hyper.clip_scale;
    precise float decay_factor = e.decay != 0 ? 1.0 - lr * pc.hyper.weight_decay : 1.0;
    precise float step_size = lr / pc.hyper.bias_correction1;
    precise float bias_correction2_sqrt = sqrt(pc.hyper.bias_correction2);
    precise float one_minus_beta1 = 1.0 - beta1;
    precise float one_minus_beta2 = 1.0 - beta2;

    uint begin = (c - e.first_chunk) * pc.chunk;
    uint end = min(begin + pc.chunk, e.n);
    if (!optim_norm_finite(pc.hyper.grad_norm)) {
        for (uint i = begin + gl_LocalInvocationID.x; i < end; i += gl_WorkGroupSize.x)
            grad.v[i] = 0.0;
        return;
    }
    for (uint i = begin + gl_LocalInvocationID.x; i < end; i += gl_WorkGroupSize.x) {
        precise float g = grad.v[i] * clip_scale;
        precise float p = param.v[i];
        if (e.decay != 0) p = p * decay_factor;
        // PyTorch's vectorised CPU kernels fuse add_'s alpha * g and addcmul_'s
        // (value * g) * g into the sum with one multiply-add each.
        precise float m = fma(g, one_minus_beta1, exp_avg.v[i] * beta1);
        precise float v = fma(one_minus_beta2 * g, g, exp_avg_sq.v[i] * beta2);
        precise float denom = sqrt(v) / bias_correction2_sqrt + eps;
        p = p + -step_size * m / denom;
        param.v[i] = p;
        exp_avg.v[i] = m;
        exp_avg_sq.v[i] = v;
        grad.v[i] = 0.0;
    }
}
