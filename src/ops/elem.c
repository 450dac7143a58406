/* Element types of the launchers' operands (see ops/common.h). */
#include <stdio.h>
#include <string.h>

#include "ops/common.h"

lws_status lws_op_elem_type(lws_cmd *cmd, const char *op, const char *names, const lws_buffer *b,
                            uint32_t n, lws_dtype *out) {
    *out = b[0].dtype;
    int same = 1;
    for (uint32_t i = 0; i < n; i++) same = same && b[i].dtype == b[0].dtype;
    if (same && b[0].dtype != LWS_U32) return LWS_OK;
    char got[96] = "";
    size_t used = 0;
    for (uint32_t i = 0; i < n && used < sizeof got; i++)
        used += (size_t)snprintf(got + used, sizeof got - used, "%s%s", i ? ", " : "",
                                 lws_dtype_name(b[i].dtype));
    return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID,
                                      "%s: %s must share one element type, f32, bf16 or f16 (one "
                                      "shader variant each); they are %s",
                                      op, names, got));
}

lws_status lws_op_require_f32(lws_cmd *cmd, const char *op, const char *names, const lws_buffer *b,
                              uint32_t n) {
    for (uint32_t i = 0; i < n; i++)
        if (b[i].dtype != LWS_F32)
            return lws_cmd_fail(cmd, lws_fail(LWS_ERR_INVALID,
                                              "%s: %s must be f32 in every precision; argument "
                                              "%u is %s",
                                              op, names, i + 1, lws_dtype_name(b[i].dtype)));
    return LWS_OK;
}

const char *lws_op_shader(char *buf, size_t size, const char *name, lws_dtype t) {
    const char *suffix = t == LWS_BF16 ? "_bf16" : t == LWS_F16 ? "_f16" : "";
    snprintf(buf, size, "%s%s", name, suffix);
    return buf;
}

lws_status lws_op_elementwise(lws_cmd *cmd, const char *name, lws_dtype t, uint64_t n,
                              lws_pipeline **pipe, uint32_t *groups) {
    lws_tuning tuning = lws_tuning_get(lws_cmd_context(cmd));
    uint32_t spec[1] = {tuning.elementwise_wg};
    char shader[48];
    LWS_OP_PIPELINE(cmd, lws_op_shader(shader, sizeof shader, name, t), spec, 1, pipe);
    uint64_t wanted = (n + tuning.elementwise_wg - 1) / tuning.elementwise_wg;
    *groups = wanted > tuning.max_groups_1d ? tuning.max_groups_1d : wanted ? (uint32_t)wanted : 1;
    return LWS_OK;
}
