/* lws — element types of device buffers.
 *
 * Every buffer the model allocates is described with its element type; its
 * byte size comes from the type and the element count, so changing the
 * precision of a tensor changes its storage in one place. */
#ifndef LWS_TENSOR_H
#define LWS_TENSOR_H

#include <stdint.h>

typedef enum lws_dtype {
    LWS_F32 = 0, /* IEEE binary32 */
    LWS_BF16,    /* the upper 16 bits of a binary32 */
    LWS_F16,     /* IEEE binary16 */
    LWS_U32,     /* token ids, indices, tables of addresses and counts */
} lws_dtype;

static inline uint32_t lws_dtype_bytes(lws_dtype t) {
    return t == LWS_BF16 || t == LWS_F16 ? 2u : 4u;
}

static inline const char *lws_dtype_name(lws_dtype t) {
    switch (t) {
    case LWS_BF16:
        return "bf16";
    case LWS_F16:
        return "f16";
    case LWS_U32:
        return "u32";
    default:
        return "f32";
    }
}

#endif
