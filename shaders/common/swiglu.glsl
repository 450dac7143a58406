// The logistic function for swiglu.comp and swiglu_bwd.comp, safe for any
// finite a: exp is only taken of -|a|, so it never overflows (1 / (1 + exp(-a))
// would give inf for a < -88), and sigmoid(a) is 0 or 1 exactly at the ends.
float swiglu_sigmoid(float a) {
    float e = exp(-abs(a)); // in (0, 1]
    float s = 1.0 / (1.0 + e);
    return a >= 0.0 ? s : e * s;
}

// SwiGLU at one element: h = silu(a) * b = a sigmoid(a) b (swiglu.comp, and
// matmul.comp's SWIGLU epilogue).
float swiglu_forward(float a, float b) {
    return a * swiglu_sigmoid(a) * b;
}

// SwiGLU's backward at one element of h = silu(a) * b, s = sigmoid(a):
//   da = dh * b * silu'(a),  silu'(a) = s + a s (1 - s) = s (1 + a (1 - s))
//   db = dh * silu(a)
// (swiglu_bwd.comp, and matmul.comp's SWIGLU_BWD epilogue).
void swiglu_backward(float dh, float a, float b, out float da, out float db) {
    float s = swiglu_sigmoid(a);
    da = dh * b * (s * (1.0 + a * (1.0 - s)));
    db = dh * (a * s);
}
