//===- fp8_gemm_error.cpp - Error of the CPU FP8 GEMM vs the FP32 GEMM ----===//
//
// Measures the relative Frobenius error ||y_fp8 - y_fp32|| / ||y_fp32|| of
// the CPU backend's FP8 GEMM (runtime/backends/cpu/Fp8.h) against the FP32
// GEMM (OpenBLAS sgemm via linearForward<float>) on the same FP32 inputs:
// fine-grained (1x128 activation tiles, 128x128 weight blocks) vs per-tensor
// scaling, with and without power-of-two (UE8M0) scales, on Gaussian
// activations with and without outlier channels. A second table shows the
// narrow-accumulator model with and without promotion every 128 elements.
// Prints a Markdown report on stdout.
//
// Usage: [OPENBLAS_NUM_THREADS=1] dsflow-bench-fp8-gemm-error [--quick]
//   --quick: small shapes only (a smoke run of a few seconds).
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dsflow::cpu;

namespace {

struct Data {
  const char *name;
  double outlierFactor; // 1: none.
  bool balanced;        // Divide the outlier channels' weights by the factor.
};

// `count` distinct channels in [0, k), spread by a fixed generator.
std::vector<int64_t> outlierChannels(int64_t k, int64_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> channel(0, k - 1);
  std::vector<int64_t> chosen;
  while (int64_t(chosen.size()) < count) {
    int64_t c = channel(rng);
    if (std::find(chosen.begin(), chosen.end(), c) == chosen.end())
      chosen.push_back(c);
  }
  return chosen;
}

// x [m, k] ~ N(0, 1); the `channels` (the same for every token) multiplied
// by `factor`, as in LLM activations.
std::vector<float> makeActivations(int64_t m, int64_t k, double factor,
                                   const std::vector<int64_t> &channels,
                                   uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0);
  std::vector<float> x(size_t(m * k));
  for (float &v : x)
    v = float(dist(rng));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t c : channels)
      x[size_t(i * k + c)] = float(x[size_t(i * k + c)] * factor);
  return x;
}

// W [n, k] ~ N(0, 1/k).
std::vector<float> makeWeights(int64_t n, int64_t k, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> dist(0.0, 1.0 / std::sqrt(double(k)));
  std::vector<float> w(size_t(n * k));
  for (float &v : w)
    v = float(dist(rng));
  return w;
}

template <typename A, typename B>
double relativeFrobenius(const std::vector<A> &y, const std::vector<B> &ref) {
  double err = 0, norm = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    double d = double(y[i]) - double(ref[i]);
    err += d * d;
    norm += double(ref[i]) * double(ref[i]);
  }
  return std::sqrt(err / norm);
}

double seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since)
      .count();
}

// The FP8 GEMM with explicit quantization, so that GEMM options can vary.
std::vector<float> fp8Gemm(const std::vector<float> &x,
                           const std::vector<float> &w, int64_t m, int64_t n,
                           int64_t k, Fp8Scaling scaling, bool ue8m0,
                           const Fp8GemmOptions &gemmOptions = {}) {
  Fp8ScaleOptions options;
  options.ue8m0Scales = ue8m0;
  std::vector<uint8_t> qx(x.size()), qw(w.size());
  std::vector<float> y(size_t(m * n));
  bool ok;
  if (scaling == Fp8Scaling::FineGrained) {
    std::vector<float> sx(size_t(m * fp8Tiles(k)));
    std::vector<float> sw(size_t(fp8Tiles(n) * fp8Tiles(k)));
    quantizeFp8Tiles1x128(x.data(), qx.data(), sx.data(), m, k, options);
    quantizeFp8Blocks128x128(w.data(), qw.data(), sw.data(), n, k, options);
    ok = fp8GemmBlockScaled(qx.data(), sx.data(), qw.data(), sw.data(),
                            y.data(), m, n, k, gemmOptions);
  } else {
    float sx, sw;
    quantizeFp8PerTensor(x.data(), qx.data(), &sx, m * k, options);
    quantizeFp8PerTensor(w.data(), qw.data(), &sw, n * k, options);
    ok = fp8GemmPerTensor(qx.data(), sx, qw.data(), sw, y.data(), m, n, k,
                          gemmOptions);
  }
  if (!ok) {
    std::fprintf(stderr, "error: FP8 GEMM options rejected\n");
    std::exit(1);
  }
  return y;
}

struct Shape {
  int64_t m, n, k;
};

} // namespace

int main(int argc, char **argv) {
  bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  if (argc > 2 || (argc == 2 && !quick)) {
    std::fprintf(stderr, "usage: %s [--quick]\n", argv[0]);
    return 2;
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<Shape> shapes = quick ? std::vector<Shape>{{64, 256, 512}}
                                    : std::vector<Shape>{{512, 512, 1024},
                                                         {512, 1024, 2048},
                                                         {512, 2048, 7168}};
  const int64_t outlierCount = 8;
  std::vector<Data> datas = {{"gaussian", 1.0, false},
                             {"outliers x100", 100.0, false},
                             {"outliers x1e4", 1e4, false},
                             {"outliers x100, balanced", 100.0, true},
                             {"outliers x1e4, balanced", 1e4, true},
                             {"outliers x1e5, balanced", 1e5, true}};

  std::printf("# FP8 GEMM error vs the FP32 GEMM (CPU reference backend)\n\n");
  const char *threads = std::getenv("OPENBLAS_NUM_THREADS");
  std::printf("Command: `%s%s%s%s > bench/results/fp8-gemm-error.md`\n\n",
              threads ? "OPENBLAS_NUM_THREADS=" : "", threads ? threads : "",
              threads ? " " : "",
              (std::string(argv[0]) + (quick ? " --quick" : "")).c_str());
  std::printf(
      "Relative Frobenius error ||y_fp8 - y_fp32||_F / ||y_fp32||_F of "
      "y = x W^T, x [M, K], W [N, K]; y_fp32 from OpenBLAS sgemm on the same "
      "FP32 inputs. x ~ N(0, 1), with (where said) %lld outlier channels (the "
      "same for every token) multiplied by 100, 10^4 or 10^5; W ~ N(0, 1/K). "
      "Unbalanced, the outlier channels dominate the output (8 x 100^2 "
      "against K in variance); balanced, their weights are divided by the "
      "same factor (as smoothing or a learned small weight would), so that "
      "the output is mostly the ordinary channels'. "
      "fine: activations per 1x128 tile, weights per 128x128 block; tensor: "
      "one scale per operand; ue8m0: scales rounded up to powers of two. "
      "Accumulation: exact chunk sums rounded to FP32, promoted with their "
      "scales into FP32 every 128 elements of K (Fp8.h). The last column "
      "checks the reference itself: FP32 GEMM vs an FP64 GEMM.\n\n",
      (long long)outlierCount);
  std::printf("| M | K | N | activations | fine | fine ue8m0 | tensor | "
              "tensor ue8m0 | fp32 vs fp64 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|\n");
  uint32_t seed = 1;
  double fp8Seconds = 0;
  int64_t fp8Gemms = 0;
  for (const Shape &s : shapes) {
    std::vector<float> w0 = makeWeights(s.n, s.k, seed++);
    std::vector<int64_t> channels = outlierChannels(s.k, outlierCount, seed++);
    for (const Data &d : datas) {
      std::vector<float> x = makeActivations(
          s.m, s.k, d.outlierFactor,
          d.outlierFactor != 1.0 ? channels : std::vector<int64_t>(), seed++);
      std::vector<float> w = w0;
      if (d.balanced)
        for (int64_t j = 0; j < s.n; ++j)
          for (int64_t c : channels)
            w[size_t(j * s.k + c)] =
                float(w[size_t(j * s.k + c)] / d.outlierFactor);
      std::vector<double> wd(w.begin(), w.end());
      std::vector<float> ref(size_t(s.m * s.n));
      linearForward(x.data(), w.data(), ref.data(), s.m, s.n, s.k);
      std::vector<double> xd(x.begin(), x.end()), ref64(size_t(s.m * s.n));
      linearForward(xd.data(), wd.data(), ref64.data(), s.m, s.n, s.k);
      double errs[4];
      int col = 0;
      for (Fp8Scaling scaling :
           {Fp8Scaling::FineGrained, Fp8Scaling::PerTensor})
        for (bool ue8m0 : {false, true}) {
          auto t0 = std::chrono::steady_clock::now();
          std::vector<float> y = fp8Gemm(x, w, s.m, s.n, s.k, scaling, ue8m0);
          fp8Seconds += seconds(t0);
          ++fp8Gemms;
          errs[col++] = relativeFrobenius(y, ref);
        }
      std::printf("| %lld | %lld | %lld | %s | %.3e | %.3e | %.3e | %.3e | "
                  "%.1e |\n",
                  (long long)s.m, (long long)s.k, (long long)s.n, d.name,
                  errs[0], errs[1], errs[2], errs[3],
                  relativeFrobenius(ref, ref64));
      std::fflush(stdout);
    }
  }

  // The accumulator model: a tensor-core accumulator keeping 14 significant
  // bits (accumulatorBits = 13), per-tensor scaling so that the promotion
  // interval can vary; relative error against the exact-chunk FP8 GEMM on
  // the same quantized operands (isolating the accumulation error).
  std::printf(
      "\n## Narrow accumulator, with and without promotion\n\n"
      "The accumulator model of Fp8GemmOptions: the running sum of E4M3 "
      "products truncated toward zero to 14 significant bits after every "
      "addition (DeepSeek-V3's report: Hopper's FP8 tensor cores keep about "
      "14 bits). Per-tensor scaling, Gaussian activations; error relative to "
      "the same FP8 GEMM with exact chunk sums (so only the accumulation "
      "differs) and, in the last column, to the FP32 GEMM. This is a model, "
      "not a bit-exact emulation of the hardware.\n\n");
  std::printf("| M | K | N | promote every 128 | never promote | "
              "promote every 128, vs FP32 GEMM | never promote, vs FP32 GEMM "
              "|\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<Shape> accShapes = quick ? std::vector<Shape>{{16, 64, 1024}}
                                       : std::vector<Shape>{{64, 256, 1024},
                                                            {64, 256, 4096},
                                                            {64, 256, 7168}};
  for (const Shape &s : accShapes) {
    std::vector<float> w = makeWeights(s.n, s.k, seed++);
    std::vector<float> x = makeActivations(s.m, s.k, 1.0, {}, seed++);
    std::vector<float> ref(size_t(s.m * s.n));
    linearForward(x.data(), w.data(), ref.data(), s.m, s.n, s.k);
    std::vector<float> exact =
        fp8Gemm(x, w, s.m, s.n, s.k, Fp8Scaling::PerTensor, false);
    Fp8GemmOptions narrow;
    narrow.accumulatorBits = 13;
    std::vector<float> promoted =
        fp8Gemm(x, w, s.m, s.n, s.k, Fp8Scaling::PerTensor, false, narrow);
    narrow.promoteEveryK = 0;
    std::vector<float> never =
        fp8Gemm(x, w, s.m, s.n, s.k, Fp8Scaling::PerTensor, false, narrow);
    std::printf(
        "| %lld | %lld | %lld | %.3e | %.3e | %.3e | %.3e |\n", (long long)s.m,
        (long long)s.k, (long long)s.n, relativeFrobenius(promoted, exact),
        relativeFrobenius(never, exact), relativeFrobenius(promoted, ref),
        relativeFrobenius(never, ref));
    std::fflush(stdout);
  }
  std::printf("\nFP8 GEMM emulation: %lld GEMMs in %.1f s (single-threaded "
              "reference code); whole run %.1f s.\n",
              (long long)fp8Gemms, fp8Seconds, seconds(start));
  return 0;
}
