//===- BFloat16.cpp - bfloat16 <-> float conversion -----------------------===//
#include "io/BFloat16.h"

#include <cstring>

namespace dsflow::io {

BF16 floatToBf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: keep the sign, force quiet.
    return BF16{static_cast<uint16_t>((bits >> 16) | 0x0040u)};
  uint32_t lsb = (bits >> 16) & 1u;
  bits += 0x7fffu + lsb;
  return BF16{static_cast<uint16_t>(bits >> 16)};
}

float bf16ToFloat(BF16 value) {
  uint32_t bits = static_cast<uint32_t>(value.bits) << 16;
  float result;
  std::memcpy(&result, &bits, sizeof(result));
  return result;
}

std::vector<BF16> floatsToBf16(const std::vector<float> &values) {
  std::vector<BF16> out(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    out[i] = floatToBf16(values[i]);
  return out;
}

std::vector<float> bf16sToFloats(const std::vector<BF16> &values) {
  std::vector<float> out(values.size());
  for (size_t i = 0; i < values.size(); ++i)
    out[i] = bf16ToFloat(values[i]);
  return out;
}

} // namespace dsflow::io
