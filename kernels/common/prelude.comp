#version 450
/* kernels/common/prelude.comp - prepended to every GLSL compute shader.
 * LOCAL_X/LOCAL_Y/LOCAL_Z and schedule parameters arrive as defines. */
#extension GL_EXT_control_flow_attributes : enable
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#extension GL_KHR_shader_subgroup_ballot : enable
#define KILN_VULKAN 1
layout(local_size_x = LOCAL_X, local_size_y = LOCAL_Y, local_size_z = LOCAL_Z) in;
