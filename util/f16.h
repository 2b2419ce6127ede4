/* util/f16.h - IEEE binary16 and bfloat16 <-> float conversion
 * (round to nearest even, NaN/Inf/subnormals preserved). */
#ifndef KILN_UTIL_F16_H
#define KILN_UTIL_F16_H

#include <stdint.h>

float kiln_f16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);
float kiln_bf16_to_f32(uint16_t h);
uint16_t kiln_f32_to_bf16(float f);

#endif
