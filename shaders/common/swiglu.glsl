// The logistic function for swiglu.comp and swiglu_bwd.comp, safe for any
// finite a: exp is only taken of -|a|, so it never overflows (1 / (1 + exp(-a))
// would give inf for a < -88), and sigmoid(a) is 0 or 1 exactly at the ends.
float swiglu_sigmoid(float a) {
    float e = exp(-abs(a)); // in (0, 1]
    float s = 1.0 / (1.0 + e);
    return a >= 0.0 ? s : e * s;
}
