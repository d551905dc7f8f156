//===- Fp8OnHost.h - FP8 GEMM steps executed on the host --------*- C++ -*-===//
//
// For the tests of the CUDA runtime's FP8 GEMMs (Fp8LinearSteps.h,
// Fp8FfnGemms.h): an Fp8Gemm executed on the host. Its operands are
// quantized by the CPU backend's own quantizers (not the device kernels'
// code), laid out as the device holds them (codes [outer, padded K], scales
// in cuBLASLt's order, at the positions CudaNumerics.inc computes), and the
// GEMM is computed as cuBLASLt documents its block-scaled FP8 GEMMs: each
// 128-long K chunk's products of decoded codes times the chunk's two scales,
// summed in double.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_RUNTIME_CUDA_FP8ONHOST_H
#define DSFLOW_TEST_RUNTIME_CUDA_FP8ONHOST_H

#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cuda/CublasLtGemm.h"
#include "runtime/backends/cuda/Fp8LinearSteps.h"
#include "unit/CudaNumericsOnHost.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace dsflow::cuda::fp8_on_host {

using Matrix = std::vector<float>;

inline int64_t tiles(int64_t size) { return (size + 127) / 128; }

template <typename T>
std::vector<T> transposeOf(const std::vector<T> &a, int64_t rows,
                           int64_t cols) {
  std::vector<T> t(a.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      t[size_t(c * rows + r)] = a[size_t(r * cols + c)];
  return t;
}

/// An operand as the device would hold it: codes [outer, padded K], scales
/// in cuBLASLt's order.
struct HostOperand {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

/// `o` made from `source` [o.rows, o.cols] with the CPU's quantizers.
inline HostOperand quantizeOnHost(const Fp8Operand &o, const float *source) {
  HostOperand h;
  h.codes.resize(size_t(o.rows * o.cols));
  cpu::Fp8ScaleOptions options;
  switch (o.how) {
  case Fp8Quantization::Rows: {
    std::vector<float> s(size_t(o.rows * tiles(o.cols)));
    cpu::quantizeFp8Tiles1x128(source, h.codes.data(), s.data(), o.rows, o.cols,
                               options);
    h.scales = cublasTileScales(s.data(), o.rows, o.cols);
    break;
  }
  case Fp8Quantization::ColumnsTransposed: {
    // 128x1 tiles of the buffer: scales [tiles(rows)][cols], already the
    // VEC128 order of the transpose.
    h.scales.resize(size_t(tiles(o.rows) * o.cols));
    cpu::quantizeFp8Tiles128x1(source, h.codes.data(), h.scales.data(), o.rows,
                               o.cols, options);
    h.codes = transposeOf(h.codes, o.rows, o.cols);
    break;
  }
  case Fp8Quantization::Blocks:
  case Fp8Quantization::BlocksTransposed: {
    std::vector<float> s(size_t(tiles(o.rows) * tiles(o.cols)));
    cpu::quantizeFp8Blocks128x128(source, h.codes.data(), s.data(), o.rows,
                                  o.cols, options);
    if (o.how == Fp8Quantization::Blocks) {
      h.scales = cublasBlockScales(s.data(), o.rows, o.cols);
    } else {
      h.codes = transposeOf(h.codes, o.rows, o.cols);
      std::vector<float> st = transposeOf(s, tiles(o.rows), tiles(o.cols));
      h.scales = cublasBlockScales(st.data(), o.cols, o.rows);
    }
    break;
  }
  }
  EXPECT_EQ(int64_t(h.scales.size()), o.scaleCount());
  // Rows of K padded with zero codes.
  std::vector<uint8_t> padded(size_t(o.codeBytes()), 0);
  for (int64_t i = 0; i < o.outer(); ++i)
    std::copy_n(&h.codes[size_t(i * o.depth())], o.depth(),
                &padded[size_t(i * o.paddedDepth())]);
  h.codes = std::move(padded);
  return h;
}

/// The scale of operand `o` for outer index i and K chunk c, read where
/// cuBLASLt reads it.
inline float scaleAt(const Fp8Operand &o, const HostOperand &h, int64_t i,
                     int64_t c) {
  if (o.blockScaled())
    return h
        .scales[size_t(dsflow_rt::blockScaleAt(i / 128, c, tiles(o.depth())))];
  return h.scales[size_t(dsflow_rt::tileScaleAt(i, c, o.outer()))];
}

/// c = x w^T + beta c as cuBLASLt's block-scaled FP8 GEMM computes it.
inline void gemmOnHost(const Fp8Gemm &g, const HostOperand &x,
                       const HostOperand &w, float *c) {
  for (int64_t i = 0; i < g.m; ++i)
    for (int64_t j = 0; j < g.n; ++j) {
      double sum = 0;
      for (int64_t chunk = 0; chunk < tiles(g.k); ++chunk) {
        double products = 0;
        for (int64_t kk = chunk * 128; kk < std::min(g.k, chunk * 128 + 128);
             ++kk)
          products += double(cpu::e4m3ToFloat(x.codes[size_t(i * g.k + kk)])) *
                      cpu::e4m3ToFloat(w.codes[size_t(j * g.k + kk)]);
        sum += products * scaleAt(g.x, x, i, chunk) * scaleAt(g.w, w, j, chunk);
      }
      float &out = c[size_t(i * g.n + j)];
      out = float(sum + double(g.beta) * out);
    }
}

/// max |got - want| / max |want|.
inline double relativeError(const Matrix &got, const Matrix &want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, double(std::abs(got[i] - want[i])));
    scale = std::max(scale, double(std::abs(want[i])));
  }
  return worst / scale;
}

} // namespace dsflow::cuda::fp8_on_host

#endif // DSFLOW_TEST_RUNTIME_CUDA_FP8ONHOST_H
