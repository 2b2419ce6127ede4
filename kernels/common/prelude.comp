#version 450
/* kernels/common/prelude.comp - put in front of every GLSL compute shader
 * (tools/embed_sources.c). LOCAL_X/LOCAL_Y/LOCAL_Z and schedule parameters
 * arrive as defines. GL_GOOGLE_cpp_style_line_directive: the build's #line
 * directives name the file (a shader and the .glsl headers it includes). */
#extension GL_GOOGLE_cpp_style_line_directive : enable
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#extension GL_KHR_shader_subgroup_ballot : enable
#define KILN_VULKAN 1
layout(local_size_x = LOCAL_X, local_size_y = LOCAL_Y, local_size_z = LOCAL_Z) in;

/* helpers every shader may use */
/* f16 element i of a uint array holding two per word */
#define HALF(arr, i) unpackHalf2x16(arr[(i) >> 1])[(i) & 1u]
/* index of this invocation over a 2-D grid of 1-D workgroups of wg */
#define GRID2D_ID(wg) ((gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * uint(wg) + gl_LocalInvocationID.x)
