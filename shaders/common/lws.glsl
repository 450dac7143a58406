// Shared declarations for every lws compute shader.
//
// Tensors are reached through buffer device addresses passed in push
// constants; ELEM is the storage type of activations and weights (fp32 unless
// a variant defines it otherwise).
#extension GL_EXT_buffer_reference : require
#extension GL_EXT_scalar_block_layout : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

#ifndef ELEM
#define ELEM float
#endif

layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Floats { float v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Uints { uint v[]; };
layout(buffer_reference, scalar, buffer_reference_align = 4) buffer Elems { ELEM v[]; };

// Grids: lws_cmd_dispatch may split a large grid into several dispatches with
// base offsets, so gl_WorkGroupID is always the global workgroup index, but
// gl_NumWorkGroups is the size of one piece: pass totals in push constants.
