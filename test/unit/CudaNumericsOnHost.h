//===- CudaNumericsOnHost.h - The device numerics as host C++ ---*- C++ -*-===//
//
// compiler/Codegen/CudaNumerics.inc compiled for the host: the few CUDA
// intrinsics it uses, written with memcpy, then the file itself. Its
// functions land in namespace dsflow_rt, as on the device.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_UNIT_CUDANUMERICSONHOST_H
#define DSFLOW_TEST_UNIT_CUDANUMERICSONHOST_H

#include <cmath>
#include <cstring>

#define __device__ inline
namespace {
inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float __int_as_float(int i) { return __uint_as_float(unsigned(i)); }
} // namespace
using std::isfinite;
using std::isnan;
#define DSFLOW_CUDA_SOURCE(...) __VA_ARGS__
#include "Codegen/CudaNumerics.inc"
#undef DSFLOW_CUDA_SOURCE
#undef __device__

#endif // DSFLOW_TEST_UNIT_CUDANUMERICSONHOST_H
