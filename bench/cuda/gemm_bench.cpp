//===- gemm_bench.cpp - cuBLASLt GEMMs: checked, then FP8 vs BF16 timed ---===//
//
// gemm_bench [RESULTS.md]
// On a GPU (built by bench/cuda/run_on_device.sh, which needs only CUDA):
//  1. Checks CublasLtGemm against the CPU backend on fresh random non-zero
//     inputs with outlier rows and channels (so that tile scales differ):
//     BF16 against a double-precision product of the same BF16 operands;
//     FP8 block-scaled and grouped FP8 against cpu::fp8GemmBlockScaled on the
//     same codes and scales. Outputs are poisoned (NaN) first, so an element
//     left unwritten fails. Error: ||gpu - cpu||_F / ||cpu||_F.
//  2. Times BF16 and FP8 block-scaled GEMMs at DeepSeek-V3's shapes (one
//     micro-batch of 4096 tokens; the experts grouped), with cuBLASLt's
//     first heuristic choice and with tuned algorithms, with CUDA events:
//     median of 30 runs after 5 warm-ups, operands rotated over enough copies
//     to exceed the L2 cache. Prints and writes the table with the FP8/BF16
//     speed ratio. Exits 1 when a check fails.
//
//===----------------------------------------------------------------------===//
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cuda/CublasLtGemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace dsflow;

namespace {

#define CHECK_CUDA(call)                                                       \
  do {                                                                         \
    cudaError_t e_ = (call);                                                   \
    if (e_ != cudaSuccess) {                                                   \
      std::fprintf(stderr, "gemm_bench: %s: %s\n", #call,                      \
                   cudaGetErrorString(e_));                                    \
      std::exit(1);                                                            \
    }                                                                          \
  } while (0)

void check(const io::Status &s) {
  if (s) {
    std::fprintf(stderr, "gemm_bench: %s\n", s->message.c_str());
    std::exit(1);
  }
}

uint16_t toBf16(float f) { // round to nearest even
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return 0x7fc0;
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1)) >> 16);
}
float fromBf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Random non-zero values with per-row magnitudes over two decades and a few
/// outlier channels (x20), as activations have.
std::vector<float> randomMatrix(int64_t rows, int64_t cols, float scale,
                                std::mt19937_64 &rng) {
  std::normal_distribution<float> normal(0.f, 1.f);
  std::uniform_real_distribution<float> exponent(-1.f, 1.f);
  std::vector<float> outlier(size_t(cols), 1.f);
  for (int64_t c = 0; c < cols; c += 97)
    outlier[size_t(c)] = 20.f;
  std::vector<float> m(size_t(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    float rowScale = scale * std::pow(10.f, exponent(rng));
    for (int64_t c = 0; c < cols; ++c) {
      float v = normal(rng);
      if (v == 0.f)
        v = 1e-3f;
      m[size_t(r * cols + c)] = v * rowScale * outlier[size_t(c)];
    }
  }
  return m;
}

template <typename T> T *toDevice(const std::vector<T> &host) {
  T *d = nullptr;
  CHECK_CUDA(cudaMalloc(&d, host.size() * sizeof(T) + 16));
  CHECK_CUDA(cudaMemcpy(d, host.data(), host.size() * sizeof(T),
                        cudaMemcpyHostToDevice));
  return d;
}

uint16_t *poisonedOutput(int64_t elements) {
  uint16_t *y = nullptr;
  CHECK_CUDA(cudaMalloc(&y, size_t(elements) * 2));
  CHECK_CUDA(cudaMemset(y, 0xff, size_t(elements) * 2)); // BF16 NaN
  return y;
}

std::vector<float> fromDeviceBf16(const uint16_t *y, int64_t elements) {
  std::vector<uint16_t> raw(static_cast<size_t>(elements));
  CHECK_CUDA(cudaMemcpy(raw.data(), y, raw.size() * 2, cudaMemcpyDeviceToHost));
  std::vector<float> out(raw.size());
  for (size_t i = 0; i < raw.size(); ++i)
    out[i] = fromBf16(raw[i]);
  return out;
}

/// ||got - want||_F / ||want||_F; infinite when got has a NaN (unwritten).
double relativeError(const std::vector<float> &got,
                     const std::vector<double> &want) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]))
      return INFINITY;
    diff += (got[i] - want[i]) * (got[i] - want[i]);
    norm += want[i] * want[i];
  }
  return std::sqrt(diff / norm);
}

/// An FP8 operand: codes and CPU-order scales.
struct Fp8Matrix {
  std::vector<uint8_t> codes;
  std::vector<float> scales;
};

Fp8Matrix quantizeActivations(const std::vector<float> &x, int64_t m,
                              int64_t k) {
  Fp8Matrix q{std::vector<uint8_t>(x.size()),
              std::vector<float>(size_t(m * cpu::fp8Tiles(k)))};
  cpu::quantizeFp8Tiles1x128(x.data(), q.codes.data(), q.scales.data(), m, k,
                             {});
  return q;
}

Fp8Matrix quantizeWeights(const std::vector<float> &w, int64_t n, int64_t k) {
  Fp8Matrix q{std::vector<uint8_t>(w.size()),
              std::vector<float>(size_t(cpu::fp8Tiles(n) * cpu::fp8Tiles(k)))};
  cpu::quantizeFp8Blocks128x128(w.data(), q.codes.data(), q.scales.data(), n, k,
                                {});
  return q;
}

bool report(const char *what, double error, double tolerance) {
  bool ok = error <= tolerance;
  std::printf("check %-44s error %.3g (tolerance %.0e) %s\n", what, error,
              tolerance, ok ? "ok" : "FAILED");
  return ok;
}

/// BF16: the GPU against a double-precision product of the same operands.
bool checkBf16(cuda::CublasLtGemm &gemm, std::mt19937_64 &rng) {
  const int64_t m = 320, n = 384, k = 1152;
  std::vector<float> x = randomMatrix(m, k, 1.f, rng),
                     w = randomMatrix(n, k, 0.02f, rng);
  std::vector<uint16_t> xb(x.size()), wb(w.size());
  std::transform(x.begin(), x.end(), xb.begin(), toBf16);
  std::transform(w.begin(), w.end(), wb.begin(), toBf16);
  std::vector<double> want(size_t(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t c = 0; c < k; ++c)
        s += double(fromBf16(xb[size_t(i * k + c)])) *
             fromBf16(wb[size_t(j * k + c)]);
      want[size_t(i * n + j)] = s;
    }
  uint16_t *dx = toDevice(xb), *dw = toDevice(wb), *dy = poisonedOutput(m * n);
  check(gemm.bf16(dx, dw, dy, m, n, k));
  CHECK_CUDA(cudaDeviceSynchronize());
  double error = relativeError(fromDeviceBf16(dy, m * n), want);
  cudaFree(dx), cudaFree(dw), cudaFree(dy);
  // BF16 output rounding is at most 2^-9 relative per element.
  return report("BF16 [320x1152] x [384x1152]^T vs double", error, 4e-3);
}

/// The CPU backend's block-scaled product, as doubles.
std::vector<double> cpuFp8(const Fp8Matrix &qx, const Fp8Matrix &qw, int64_t m,
                           int64_t n, int64_t k) {
  std::vector<float> y(size_t(m * n));
  if (!cpu::fp8GemmBlockScaled(qx.codes.data(), qx.scales.data(),
                               qw.codes.data(), qw.scales.data(), y.data(), m,
                               n, k)) {
    std::fprintf(stderr, "gemm_bench: cpu::fp8GemmBlockScaled refused\n");
    std::exit(1);
  }
  return std::vector<double>(y.begin(), y.end());
}

/// When the FP8 GEMM is refused: which scale modes cuBLASLt's heuristic
/// accepts for this shape, with scale pointers set (A = w, B = x, "TN").
void probeFp8Heuristics(int64_t m, int64_t n, int64_t k, const float *scales) {
  const int32_t blk = CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F,
                vec = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F,
                scalar = CUBLASLT_MATMUL_MATRIX_SCALE_SCALAR_32F;
  const int32_t modes[][2] = {
      {blk, vec}, {vec, blk}, {vec, vec}, {scalar, scalar}};
  cublasLtHandle_t handle;
  cublasLtCreate(&handle);
  for (const auto &mode : modes) {
    cublasLtMatmulDesc_t desc;
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    cublasOperation_t t = CUBLAS_OP_T, nop = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t,
                                   sizeof(t));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &nop,
                                   sizeof(nop));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                   &mode[0], 4);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                   &mode[1], 4);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                   &scales, sizeof(scales));
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                   &scales, sizeof(scales));
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatrixLayoutCreate(&a, CUDA_R_8F_E4M3, k, n, k);
    cublasLtMatrixLayoutCreate(&b, CUDA_R_8F_E4M3, k, m, k);
    cublasLtMatrixLayoutCreate(&d, CUDA_R_16BF, n, m, n);
    cublasLtMatmulPreference_t preference;
    cublasLtMatmulPreferenceCreate(&preference);
    size_t workspace = size_t(32) << 20;
    cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
        sizeof(workspace));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(
        handle, desc, a, b, d, d, preference, 1, &result, &found);
    std::printf("  probe: A mode %d, B mode %d: %s, %d algorithms\n", mode[0],
                mode[1], cublasLtGetStatusName(st), found);
    cublasLtMatmulPreferenceDestroy(preference);
    cublasLtMatrixLayoutDestroy(a), cublasLtMatrixLayoutDestroy(b),
        cublasLtMatrixLayoutDestroy(d);
    cublasLtMatmulDescDestroy(desc);
  }
  cublasLtDestroy(handle);
}

/// FP8 block-scaled (one GEMM, then four experts of different row counts)
/// against cpu::fp8GemmBlockScaled on the same codes and scales.
bool checkFp8(cuda::CublasLtGemm &gemm, std::mt19937_64 &rng) {
  bool ok = true;
  const int64_t n = 384, k = 1152;
  {
    const int64_t m = 320;
    std::vector<float> x = randomMatrix(m, k, 1.f, rng),
                       w = randomMatrix(n, k, 0.02f, rng);
    Fp8Matrix qx = quantizeActivations(x, m, k), qw = quantizeWeights(w, n, k);
    std::vector<double> want = cpuFp8(qx, qw, m, n, k);
    uint8_t *dqx = toDevice(qx.codes), *dqw = toDevice(qw.codes);
    float *dsx = toDevice(cuda::cublasTileScales(qx.scales.data(), m, k));
    float *dsw = toDevice(cuda::cublasBlockScales(qw.scales.data(), n, k));
    uint16_t *dy = poisonedOutput(m * n);
    if (io::Status e = gemm.fp8BlockScaled(dqx, dsx, dqw, dsw, dy, m, n, k)) {
      std::printf("%s\n", e->message.c_str());
      probeFp8Heuristics(m, n, k, dsx);
      return false;
    }
    CHECK_CUDA(cudaDeviceSynchronize());
    bool single = report("FP8 1x128/128x128 [320x1152] x [384x1152]^T",
                         relativeError(fromDeviceBf16(dy, m * n), want), 4e-3);
    if (!single) {
      // Which scale order would have matched: the CPU's own, unpadded.
      CHECK_CUDA(cudaMemcpy(dsx, qx.scales.data(), qx.scales.size() * 4,
                            cudaMemcpyHostToDevice));
      check(gemm.fp8BlockScaled(dqx, dsx, dqw, dsw, dy, m, n, k));
      CHECK_CUDA(cudaDeviceSynchronize());
      std::printf("  with x scales in the CPU's [m][tiles] order: error %.3g\n",
                  relativeError(fromDeviceBf16(dy, m * n), want));
    }
    ok &= single;
    cudaFree(dqx), cudaFree(dqw), cudaFree(dsx), cudaFree(dsw), cudaFree(dy);
  }
  {
    // Four experts; each group's x scales in cuBLASLt's order, back to back.
    const std::vector<int64_t> rows = {128, 256, 64, 192};
    int64_t total = 0;
    for (int64_t r : rows)
      total += r;
    std::vector<float> x = randomMatrix(total, k, 1.f, rng);
    Fp8Matrix qx = quantizeActivations(x, total, k);
    std::vector<float> xScales;
    std::vector<double> want(size_t(total * n));
    std::vector<cuda::GemmGroup> groups;
    std::vector<void *> owned;
    int64_t first = 0;
    for (int64_t r : rows) {
      Fp8Matrix qw = quantizeWeights(randomMatrix(n, k, 0.02f, rng), n, k);
      Fp8Matrix qxg{std::vector<uint8_t>(qx.codes.begin() + first * k,
                                         qx.codes.begin() + (first + r) * k),
                    std::vector<float>(
                        qx.scales.begin() + first * cpu::fp8Tiles(k),
                        qx.scales.begin() + (first + r) * cpu::fp8Tiles(k))};
      std::vector<double> part = cpuFp8(qxg, qw, r, n, k);
      std::copy(part.begin(), part.end(), want.begin() + first * n);
      std::vector<float> s = cuda::cublasTileScales(qxg.scales.data(), r, k);
      xScales.insert(xScales.end(), s.begin(), s.end());
      uint8_t *dw = toDevice(qw.codes);
      float *ds = toDevice(cuda::cublasBlockScales(qw.scales.data(), n, k));
      owned.push_back(dw), owned.push_back(ds);
      groups.push_back({first, r, dw, ds});
      first += r;
    }
    uint8_t *dqx = toDevice(qx.codes);
    float *dsx = toDevice(xScales);
    uint16_t *dy = poisonedOutput(total * n);
    check(gemm.groupedFp8(dqx, dsx, groups, dy, n, k));
    CHECK_CUDA(cudaDeviceSynchronize());
    ok &= report("grouped FP8, 4 experts of 64-256 rows",
                 relativeError(fromDeviceBf16(dy, total * n), want), 4e-3);
    for (void *p : owned)
      cudaFree(p);
    cudaFree(dqx), cudaFree(dsx), cudaFree(dy);
  }
  return ok;
}

struct Shape {
  const char *name;
  int64_t m, n, k;
  int experts; // > 1: a grouped GEMM of `experts` groups of m rows
};

/// Median time in ms of `run(copy)` over 30 runs after 5 warm-ups.
template <typename Run> double medianMs(int copies, Run run) {
  cudaEvent_t start, stop;
  CHECK_CUDA(cudaEventCreate(&start));
  CHECK_CUDA(cudaEventCreate(&stop));
  for (int i = 0; i < 5; ++i)
    run(i % copies);
  std::vector<float> times;
  for (int i = 0; i < 30; ++i) {
    CHECK_CUDA(cudaEventRecord(start));
    run(i % copies);
    CHECK_CUDA(cudaEventRecord(stop));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    times.push_back(ms);
  }
  CHECK_CUDA(cudaGetLastError());
  std::nth_element(times.begin(), times.begin() + 15, times.end());
  cudaEventDestroy(start), cudaEventDestroy(stop);
  return times[15];
}

/// Random device bytes (uniform E4M3 codes that are finite, or BF16 values).
void *randomDevice(size_t bytes, bool fp8, std::mt19937_64 &rng) {
  std::vector<uint8_t> host(bytes);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  if (fp8) {
    for (uint8_t &b : host)
      b = cpu::floatToE4M3(u(rng) * 400.f);
  } else {
    for (size_t i = 0; i + 1 < bytes; i += 2) {
      uint16_t h = toBf16(u(rng));
      std::memcpy(&host[i], &h, 2);
    }
  }
  return toDevice(host);
}

struct Timing {
  double bf16Ms, fp8Ms;
};

Timing timeShape(cuda::CublasLtGemm &gemm, const Shape &s,
                 std::mt19937_64 &rng) {
  const int64_t rows = s.m * s.experts;
  const double operandBytes = double(rows * s.k + s.experts * s.n * s.k) * 2;
  // Enough copies of the operands that one pass does not fit the L2 cache.
  const int copies = int(std::min(8.0, std::ceil(200e6 / operandBytes)));
  struct Operands {
    void *x, *w, *qx, *qw;
    float *sx, *sw;
  };
  std::vector<Operands> ops;
  std::vector<float> ones(
      size_t(cpu::fp8Tiles(s.k) *
             std::max(rows, s.experts * cpu::fp8Tiles(s.n) * 4)),
      1.0f / 64);
  for (int c = 0; c < copies; ++c)
    ops.push_back({randomDevice(size_t(rows * s.k) * 2, false, rng),
                   randomDevice(size_t(s.experts * s.n * s.k) * 2, false, rng),
                   randomDevice(size_t(rows * s.k), true, rng),
                   randomDevice(size_t(s.experts * s.n * s.k), true, rng),
                   toDevice(ones), toDevice(ones)});
  uint16_t *y = poisonedOutput(rows * s.n);
  auto groups = [&](const Operands &o, bool fp8) {
    std::vector<cuda::GemmGroup> g;
    const int64_t wBlockScales =
        cpu::fp8Tiles(s.n) * ((cpu::fp8Tiles(s.k) + 3) / 4 * 4);
    for (int e = 0; e < s.experts; ++e)
      g.push_back({e * s.m, s.m,
                   static_cast<const uint8_t *>(fp8 ? o.qw : o.w) +
                       size_t(e * s.n * s.k) * (fp8 ? 1 : 2),
                   o.sw + e * wBlockScales});
    return g;
  };
  Timing t;
  t.bf16Ms = medianMs(copies, [&](int c) {
    const Operands &o = ops[size_t(c)];
    check(s.experts > 1 ? gemm.groupedBf16(o.x, groups(o, false), y, s.n, s.k)
                        : gemm.bf16(o.x, o.w, y, s.m, s.n, s.k));
  });
  t.fp8Ms = medianMs(copies, [&](int c) {
    const Operands &o = ops[size_t(c)];
    check(s.experts > 1
              ? gemm.groupedFp8(o.qx, o.sx, groups(o, true), y, s.n, s.k)
              : gemm.fp8BlockScaled(o.qx, o.sx, o.qw, o.sw, y, s.m, s.n, s.k));
  });
  for (Operands &o : ops) {
    cudaFree(o.x), cudaFree(o.w), cudaFree(o.qx), cudaFree(o.qw);
    cudaFree(o.sx), cudaFree(o.sw);
  }
  cudaFree(y);
  return t;
}

} // namespace

int main(int argc, char **argv) {
  if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
    std::fprintf(stderr, "usage: gemm_bench [RESULTS.md]\n");
    return 2;
  }
  cudaDeviceProp prop{};
  CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  io::Expected<std::unique_ptr<cuda::CublasLtGemm>> gemm =
      cuda::CublasLtGemm::create();
  check(gemm.status());
  std::mt19937_64 rng(20261123);
  bool ok = checkBf16(**gemm, rng);
  ok &= checkFp8(**gemm, rng);
  if (!ok) {
    std::printf("a GEMM check FAILED: not timing\n");
    return 1;
  }

  // DeepSeek-V3's GEMMs for one micro-batch of 4096 tokens (forward shapes;
  // the experts: 8 local experts of 1024 routed rows each).
  const Shape shapes[] = {
      {"MLA q down (wq_a)", 4096, 1536, 7168, 1},
      {"MLA q up (wq_b)", 4096, 24576, 1536, 1},
      {"MLA kv up (wkv_b)", 4096, 32768, 512, 1},
      {"MLA out (wo)", 4096, 7168, 16384, 1},
      {"shared expert gate+up", 4096, 4096, 7168, 1},
      {"shared expert down", 4096, 7168, 2048, 1},
      {"dense FFN gate+up", 4096, 36864, 7168, 1},
      {"8 experts gate+up (grouped)", 1024, 4096, 7168, 8},
      {"8 experts down (grouped)", 1024, 7168, 2048, 8},
  };
  // Timed twice: with cuBLASLt's first heuristic choice, and with the
  // fastest of its 8 best candidates (CublasLtGemm's tuning), both for BF16
  // and FP8 alike.
  std::string tables;
  for (bool tune : {false, true}) {
    io::Expected<std::unique_ptr<cuda::CublasLtGemm>> timed =
        cuda::CublasLtGemm::create(size_t(32) << 20, tune);
    check(timed.status());
    std::string table =
        std::string(tune ? "Algorithms tuned (the fastest of cuBLASLt's 8 "
                           "best candidates, per shape):"
                         : "cuBLASLt's first heuristic choice:") +
        "\n\n| GEMM | M x N x K | BF16 ms | BF16 TFLOP/s | FP8 ms | FP8 "
        "TFLOP/s | FP8 / BF16 speed |\n|---|---|---|---|---|---|---|\n";
    double bf16Total = 0, fp8Total = 0;
    for (const Shape &s : shapes) {
      Timing t = timeShape(**timed, s, rng);
      double flops = 2.0 * double(s.m * s.experts) * double(s.n) * double(s.k);
      bf16Total += t.bf16Ms, fp8Total += t.fp8Ms;
      char row[256];
      std::snprintf(row, sizeof(row),
                    "| %s | %s%lld x %lld x %lld | %.3f | %.0f | %.3f | %.0f | "
                    "%.2fx |\n",
                    s.name,
                    s.experts > 1 ? (std::to_string(s.experts) + " x ").c_str()
                                  : "",
                    (long long)s.m, (long long)s.n, (long long)s.k, t.bf16Ms,
                    flops / t.bf16Ms / 1e9, t.fp8Ms, flops / t.fp8Ms / 1e9,
                    t.bf16Ms / t.fp8Ms);
      table += row;
    }
    char total[160];
    std::snprintf(total, sizeof(total),
                  "| all of the above | | %.3f | | %.3f | | %.2fx |\n\n",
                  bf16Total, fp8Total, bf16Total / fp8Total);
    tables += table + total;
  }
  std::string header = std::string("device: ") + prop.name + ", cuBLASLt " +
                       std::to_string(cublasLtGetVersion()) + "\n\n";
  std::printf("\n%s%s", header.c_str(), tables.c_str());
  if (argc == 2) {
    if (FILE *f = std::fopen(argv[1], "w")) {
      std::fputs((header + tables).c_str(), f);
      std::fclose(f);
    }
  }
  std::printf("%s\n", ok ? "all GEMM checks passed" : "a GEMM check FAILED");
  return ok ? 0 : 1;
}
