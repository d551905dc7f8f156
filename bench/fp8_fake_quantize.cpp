//===- fp8_fake_quantize.cpp - Speed of the CPU's FP8 emulation -----------===//
//
// The CPU backend emulates an FP8 GEMM by reading its operands through
// fakeQuantizeFp8 (E4M3 and back, in one pass) and running the FP32 GEMM.
// This times fakeQuantizeFp8 against its definition, run side by side on the
// same data: quantizeFp8* then dequantizeFp8* (two passes, through the codes).
// Both must give the same bits (checked; the benchmark fails otherwise). For
// scale it also times the FP32 GEMM that reads such an operand: a routed
// expert's up-projection with `tokens` rows.
// Prints a Markdown table on stdout.
//
// Usage (one thread, as the FP8 training benchmarks run):
//   OPENBLAS_NUM_THREADS=1 DSFLOW_NUM_THREADS=1
//   dsflow-bench-fp8-fake-quantize [--quick]
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace dsflow::cpu;

namespace {

/// Milliseconds one call of `body` takes.
double timeMs(const std::function<void()> &body) {
  auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double, std::milli>(
             std::chrono::steady_clock::now() - start)
      .count();
}

/// The median times of `repeats` calls of `a` and of `b`, the calls
/// alternating, so that a change in the machine's load hits both alike.
std::pair<double, double> medianMsSideBySide(int repeats,
                                             const std::function<void()> &a,
                                             const std::function<void()> &b) {
  std::vector<double> timesA, timesB;
  for (int i = 0; i < repeats; ++i) {
    timesA.push_back(timeMs(a));
    timesB.push_back(timeMs(b));
  }
  std::sort(timesA.begin(), timesA.end());
  std::sort(timesB.begin(), timesB.end());
  return {timesA[timesA.size() / 2], timesB[timesB.size() / 2]};
}

/// The two-pass definition: codes and scales, then their values.
void quantizeThenDequantize(const std::vector<float> &x, std::vector<float> &y,
                            int64_t rows, int64_t cols, Fp8Tiling tiling,
                            const Fp8ScaleOptions &options) {
  std::vector<uint8_t> q(x.size());
  std::vector<float> scales(x.size()); // at most one per element
  switch (tiling) {
  case Fp8Tiling::Tiles1x128:
    quantizeFp8Tiles1x128(x.data(), q.data(), scales.data(), rows, cols,
                          options);
    dequantizeFp8Tiles1x128(q.data(), scales.data(), y.data(), rows, cols);
    break;
  case Fp8Tiling::Tiles128x1:
    quantizeFp8Tiles128x1(x.data(), q.data(), scales.data(), rows, cols,
                          options);
    dequantizeFp8Tiles128x1(q.data(), scales.data(), y.data(), rows, cols);
    break;
  case Fp8Tiling::Blocks128x128:
    quantizeFp8Blocks128x128(x.data(), q.data(), scales.data(), rows, cols,
                             options);
    dequantizeFp8Blocks128x128(q.data(), scales.data(), y.data(), rows, cols);
    break;
  }
}

} // namespace

int main(int argc, char **argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const int64_t rows = quick ? 256 : 2048, cols = quick ? 512 : 2048;
  const int repeats = quick ? 3 : 15;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> x(size_t(rows * cols));
  for (float &v : x)
    v = normal(rng) * std::exp(2 * normal(rng)); // a wide range of magnitudes
  std::vector<float> fused(x.size()), reference(x.size());

  std::printf("FP8 fake quantization of a [%lld, %lld] FP32 array, one "
              "thread (medians of %d alternating calls)\n\n",
              (long long)rows, (long long)cols, repeats);
  std::printf("| tiling | scales | two-pass ms | fused ms | speed-up | "
              "ns/element (fused) |\n|---|---|---|---|---|---|\n");
  struct Case {
    const char *name;
    Fp8Tiling tiling;
  } cases[] = {{"1x128", Fp8Tiling::Tiles1x128},
               {"128x1", Fp8Tiling::Tiles128x1},
               {"128x128", Fp8Tiling::Blocks128x128}};
  int mismatches = 0;
  for (const Case &c : cases)
    for (bool ue8m0 : {false, true}) {
      Fp8ScaleOptions options;
      options.ue8m0Scales = ue8m0;
      auto [twoPass, oneMs] = medianMsSideBySide(
          repeats,
          [&] {
            quantizeThenDequantize(x, reference, rows, cols, c.tiling, options);
          },
          [&] {
            fakeQuantizeFp8(x.data(), fused.data(), rows, cols, c.tiling,
                            options);
          });
      bool same =
          std::memcmp(fused.data(), reference.data(), 4 * fused.size()) == 0;
      mismatches += !same;
      std::printf("| %s | %s | %.2f | %.2f | %.1fx | %.2f |%s\n", c.name,
                  ue8m0 ? "UE8M0" : "FP32", twoPass, oneMs, twoPass / oneMs,
                  oneMs * 1e6 / double(rows * cols), same ? "" : " MISMATCH");
    }

  // A routed expert's up-projection: tokens x hidden times hidden x inter.
  const int64_t tokens = quick ? 64 : 256, hidden = cols, inter = rows / 2;
  std::vector<float> a(size_t(tokens * hidden), 0.5f),
      out(size_t(tokens * inter));
  auto [gemm, weightQuant] = medianMsSideBySide(
      repeats,
      [&] {
        linearForward(a.data(), x.data(), out.data(), tokens, inter, hidden);
      },
      [&] {
        fakeQuantizeFp8(x.data(), fused.data(), inter, hidden,
                        Fp8Tiling::Blocks128x128, Fp8ScaleOptions{});
      });
  std::printf("\nFP32 GEMM [%lld x %lld] x [%lld x %lld]^T: %.2f ms; fake "
              "quantization of its weight: %.2f ms (%.0f%% of the GEMM)\n",
              (long long)tokens, (long long)hidden, (long long)inter,
              (long long)hidden, gemm, weightQuant, 100 * weightQuant / gemm);
  if (mismatches) {
    std::fprintf(stderr,
                 "error: %d cases differ from quantize-then-dequantize\n",
                 mismatches);
    return 1;
  }
  return 0;
}
