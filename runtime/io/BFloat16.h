//===- BFloat16.h - bfloat16 <-> float conversion ---------------*- C++ -*-===//
//
// float -> bfloat16 rounds to nearest, ties to even (as PyTorch and CUDA's
// __float2bfloat16_rn do); infinities stay infinities, finite values that round
// past the largest bfloat16 become infinities, and every NaN stays a NaN
// (quiet, sign kept). bfloat16 -> float is exact.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_BFLOAT16_H
#define DSFLOW_IO_BFLOAT16_H

#include "io/DType.h"

#include <cstddef>
#include <vector>

namespace dsflow::io {

BF16 floatToBf16(float value);
float bf16ToFloat(BF16 value);

std::vector<BF16> floatsToBf16(const std::vector<float> &values);
std::vector<float> bf16sToFloats(const std::vector<BF16> &values);

} // namespace dsflow::io

#endif // DSFLOW_IO_BFLOAT16_H
