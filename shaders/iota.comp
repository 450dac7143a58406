#version 460
#extension GL_GOOGLE_include_directive : require
// out[i] = i + offset over a 3-D grid of workgroups, i counted in x, then y,
// then z. Used to check that large grids reach every element.
#include "lws.glsl"

layout(local_size_x_id = 0) in;

layout(push_constant, scalar) uniform Push {
    Uints out_;
    uint n;
    uint offset;
    uint groups_x; // total workgroups in x and y (gl_NumWorkGroups is per split piece)
    uint groups_y;
} pc;

void main() {
    uint group = gl_WorkGroupID.x + pc.groups_x * (gl_WorkGroupID.y + pc.groups_y * gl_WorkGroupID.z);
    uint i = group * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (i < pc.n) pc.out_.v[i] = i + pc.offset;
}
