//===- CublasLtGemm.cpp - The plan's GEMMs through cuBLASLt ---------------===//
#include "runtime/backends/cuda/CublasLtGemm.h"

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

namespace dsflow::cuda {
namespace {

constexpr int64_t kTile = 128;
int64_t tiles(int64_t size) { return (size + kTile - 1) / kTile; }
int64_t paddedTo4(int64_t size) { return (size + 3) / 4 * 4; }

io::Status failure(const std::string &what, cublasStatus_t status) {
  return io::makeError("cuBLASLt", what + ": " + cublasLtGetStatusName(status) +
                                       " (" + cublasLtGetStatusString(status) +
                                       ")");
}

/// BF16; FP8 with BF16 output (w per 128x128 block); FP8 with FP32 output
/// and accumulation into it, w per 128x128 block or per 1x128 tile.
enum class Kind { Bf16, Fp8BlockScaled, Fp8Fp32Blocks, Fp8Fp32Tiles };
bool isFp8(Kind kind) { return kind != Kind::Bf16; }

/// A matmul descriptor, its three layouts and the algorithm cuBLASLt's
/// heuristic chose, for one kind and shape.
struct Prepared {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
  cublasLtMatmulAlgo_t algo{};
  /// The heuristic's candidates, best first, until the first run times them.
  std::vector<cublasLtMatmulAlgo_t> candidates;

  ~Prepared() {
    if (d)
      cublasLtMatrixLayoutDestroy(d);
    if (b)
      cublasLtMatrixLayoutDestroy(b);
    if (a)
      cublasLtMatrixLayoutDestroy(a);
    if (desc)
      cublasLtMatmulDescDestroy(desc);
  }
};

/// cuBLASLt's A is w, its B is x.
void setScales(cublasLtMatmulDesc_t desc, const float *xScales,
               const float *wScales) {
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                                 &wScales, sizeof(wScales));
  cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                                 &xScales, sizeof(xScales));
}

} // namespace

std::vector<float> cublasTileScales(const float *scales, int64_t m, int64_t k) {
  int64_t t = tiles(k);
  std::vector<float> out(size_t(t * m));
  for (int64_t row = 0; row < m; ++row)
    for (int64_t c = 0; c < t; ++c)
      out[size_t(c * m + row)] = scales[row * t + c];
  return out;
}

std::vector<float> cublasBlockScales(const float *scales, int64_t n,
                                     int64_t k) {
  int64_t kBlocks = tiles(k), stride = paddedTo4(kBlocks);
  std::vector<float> out(size_t(tiles(n) * stride), 1.0f);
  for (int64_t nb = 0; nb < tiles(n); ++nb)
    for (int64_t kb = 0; kb < kBlocks; ++kb)
      out[size_t(nb * stride + kb)] = scales[nb * kBlocks + kb];
  return out;
}

struct CublasLtGemm::State {
  /// Algorithms the heuristic is asked for when tuning.
  static constexpr int kCandidates = 8;
  cublasLtHandle_t handle = nullptr;
  bool tune = false;
  void *workspace = nullptr;
  size_t workspaceBytes = 0;
  std::map<std::tuple<Kind, int64_t, int64_t, int64_t>,
           std::unique_ptr<Prepared>>
      prepared;
  /// General GEMMs by precision, transposes, sizes and leading dimensions.
  std::map<std::tuple<GemmPrecision, bool, bool, int64_t, int64_t, int64_t,
                      int64_t, int64_t, int64_t>,
           std::unique_ptr<Prepared>>
      preparedGeneral;

  ~State() {
    prepared.clear();
    preparedGeneral.clear();
    if (workspace)
      cudaFree(workspace);
    if (handle)
      cublasLtDestroy(handle);
  }

  /// cuBLASLt's best `wanted` algorithms for `p` within the workspace.
  cublasStatus_t heuristic(const Prepared &p, int wanted,
                           cublasLtMatmulHeuristicResult_t *results,
                           int &found) const {
    cublasLtMatmulPreference_t preference = nullptr;
    cublasLtMatmulPreferenceCreate(&preference);
    cublasLtMatmulPreferenceSetAttribute(
        preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspaceBytes,
        sizeof(workspaceBytes));
    cublasStatus_t s =
        cublasLtMatmulAlgoGetHeuristic(handle, p.desc, p.a, p.b, p.d, p.d,
                                       preference, wanted, results, &found);
    cublasLtMatmulPreferenceDestroy(preference);
    return s;
  }

  /// The descriptor for y [m, n] = x [m, k] w [n, k]^T of `kind` (made on
  /// first use); scale pointers are set per call. Null when cuBLASLt has no
  /// algorithm for it (remembered).
  io::Expected<Prepared *> prepare(Kind kind, int64_t m, int64_t n, int64_t k,
                                   const float *xScales, const float *wScales) {
    auto key = std::make_tuple(kind, m, n, k);
    if (auto it = prepared.find(key); it != prepared.end())
      return it->second.get();
    auto p = std::make_unique<Prepared>();
    cudaDataType_t in = kind == Kind::Bf16 ? CUDA_R_16BF : CUDA_R_8F_E4M3;
    cudaDataType_t out = kind == Kind::Bf16 || kind == Kind::Fp8BlockScaled
                             ? CUDA_R_16BF
                             : CUDA_R_32F;
    std::string shape = "[" + std::to_string(m) + "x" + std::to_string(k) +
                        "] x [" + std::to_string(n) + "x" + std::to_string(k) +
                        "]^T";
    cublasStatus_t s =
        cublasLtMatmulDescCreate(&p->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS)
      return *failure("matmul descriptor for " + shape, s);
    cublasOperation_t transA = CUBLAS_OP_T, transB = CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                   &transA, sizeof(transA));
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                   &transB, sizeof(transB));
    if (isFp8(kind)) {
      // Fast accumulation stays off (the default): block scaling promotes
      // each K chunk into FP32, as the recipe does.
      int32_t aMode = kind == Kind::Fp8Fp32Tiles
                          ? CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F
                          : CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F;
      int32_t bMode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_A_SCALE_MODE,
                                     &aMode, sizeof(aMode));
      cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_B_SCALE_MODE,
                                     &bMode, sizeof(bMode));
      // The heuristic rejects block scaling without scale pointers.
      setScales(p->desc, xScales, wScales);
    }
    // Column-major: A = w as [k x n], B = x as [k x m], D = y as [n x m].
    if ((s = cublasLtMatrixLayoutCreate(&p->a, in, k, n, k)) ||
        (s = cublasLtMatrixLayoutCreate(&p->b, in, k, m, k)) ||
        (s = cublasLtMatrixLayoutCreate(&p->d, out, n, m, n)))
      return *failure("matrix layouts for " + shape, s);
    cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
    int found = 0;
    s = heuristic(*p, tune ? kCandidates : 1, results, found);
    if ((s == CUBLAS_STATUS_SUCCESS && found == 0) ||
        s == CUBLAS_STATUS_NOT_SUPPORTED) {
      prepared.emplace(key, nullptr);
      return nullptr;
    }
    if (s != CUBLAS_STATUS_SUCCESS)
      return *failure("the heuristic for the GEMM " + shape, s);
    p->algo = results[0].algo;
    for (int i = 1; i < found; ++i) {
      if (i == 1)
        p->candidates.push_back(results[0].algo);
      p->candidates.push_back(results[i].algo);
    }
    Prepared *raw = p.get();
    prepared.emplace(key, std::move(p));
    return raw;
  }

  /// The descriptor of a general GEMM (made on first use).
  io::Expected<Prepared *> prepareGeneral(GemmPrecision precision,
                                          const RowMajorGemm &g) {
    auto key = std::make_tuple(precision, g.transA, g.transB, g.m, g.n, g.k,
                               g.lda, g.ldb, g.ldc);
    if (auto it = preparedGeneral.find(key); it != preparedGeneral.end())
      return it->second.get();
    auto p = std::make_unique<Prepared>();
    ColumnMajorGemm c = toColumnMajor(g);
    cudaDataType_t type = precision == GemmPrecision::Bf16 ||
                                  precision == GemmPrecision::Bf16Fp32Out
                              ? CUDA_R_16BF
                              : CUDA_R_32F;
    cudaDataType_t out =
        precision == GemmPrecision::Bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cublasComputeType_t compute = precision == GemmPrecision::Tf32
                                      ? CUBLAS_COMPUTE_32F_FAST_TF32
                                      : CUBLAS_COMPUTE_32F;
    std::string shape = "[" + std::to_string(g.m) + "x" + std::to_string(g.k) +
                        "] x [" + std::to_string(g.k) + "x" +
                        std::to_string(g.n) + "]";
    cublasStatus_t s = cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F);
    if (s != CUBLAS_STATUS_SUCCESS)
      return *failure("matmul descriptor for " + shape, s);
    cublasOperation_t transA = c.transA ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t transB = c.transB ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                   &transA, sizeof(transA));
    cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB,
                                   &transB, sizeof(transB));
    if ((s = cublasLtMatrixLayoutCreate(&p->a, type, c.a.rows, c.a.cols,
                                        c.a.ld)) ||
        (s = cublasLtMatrixLayoutCreate(&p->b, type, c.b.rows, c.b.cols,
                                        c.b.ld)) ||
        (s = cublasLtMatrixLayoutCreate(&p->d, out, c.c.rows, c.c.cols,
                                        c.c.ld)))
      return *failure("matrix layouts for " + shape, s);
    cublasLtMatmulHeuristicResult_t result = {};
    int found = 0;
    s = heuristic(*p, 1, &result, found);
    if (s != CUBLAS_STATUS_SUCCESS || found == 0)
      return *failure(
          std::string(precision == GemmPrecision::Fp32   ? "FP32"
                      : precision == GemmPrecision::Tf32 ? "TF32"
                      : precision == GemmPrecision::Bf16 ? "BF16"
                                                         : "BF16 (FP32 out)") +
              " GEMM " + shape + ": no algorithm",
          s == CUBLAS_STATUS_SUCCESS ? CUBLAS_STATUS_NOT_SUPPORTED : s);
    p->algo = result.algo;
    Prepared *raw = p.get();
    preparedGeneral.emplace(key, std::move(p));
    return raw;
  }

  /// Times each candidate on this call's operands (median of 5 after a
  /// warm-up) and keeps the fastest; candidates that fail are skipped.
  template <typename Matmul>
  void pickFastest(Prepared &p, Matmul &matmul, cudaStream_t stream) {
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    float best = INFINITY;
    for (const cublasLtMatmulAlgo_t &algo : p.candidates) {
      if (matmul(algo) != CUBLAS_STATUS_SUCCESS)
        continue;
      std::vector<float> times;
      for (int i = 0; i < 5; ++i) {
        cudaEventRecord(start, stream);
        matmul(algo);
        cudaEventRecord(stop, stream);
        cudaEventSynchronize(stop);
        float ms = 0;
        cudaEventElapsedTime(&ms, start, stop);
        times.push_back(ms);
      }
      std::nth_element(times.begin(), times.begin() + 2, times.end());
      if (times[2] < best)
        best = times[2], p.algo = algo;
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    p.candidates.clear();
  }

  /// y = x w^T + beta y; false, with nothing run, when cuBLASLt has no
  /// algorithm for it.
  io::Expected<bool> run(Kind kind, const void *x, const float *xScales,
                         const void *w, const float *wScales, void *y,
                         int64_t m, int64_t n, int64_t k, float beta,
                         void *stream) {
    if (m == 0 || n == 0)
      return true;
    io::Expected<Prepared *> p = prepare(kind, m, n, k, xScales, wScales);
    if (!p)
      return p.error();
    if (!*p)
      return false;
    if (isFp8(kind))
      setScales((*p)->desc, xScales, wScales);
    auto matmul = [&](const cublasLtMatmulAlgo_t &algo) {
      float alpha = 1.0f;
      return cublasLtMatmul(handle, (*p)->desc, &alpha, w, (*p)->a, x, (*p)->b,
                            &beta, y, (*p)->d, y, (*p)->d, &algo, workspace,
                            workspaceBytes, static_cast<cudaStream_t>(stream));
    };
    // Timing runs the GEMM several times: only where it overwrites y.
    if (!(*p)->candidates.empty() && beta == 0.0f)
      pickFastest(**p, matmul, static_cast<cudaStream_t>(stream));
    cublasStatus_t s = matmul((*p)->algo);
    // The heuristic can offer what the GEMM then refuses (checked before
    // anything runs): treated as no algorithm, and remembered.
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) {
      prepared[std::make_tuple(kind, m, n, k)] = nullptr;
      return false;
    }
    if (s != CUBLAS_STATUS_SUCCESS)
      return *failure("matmul [" + std::to_string(m) + "x" + std::to_string(k) +
                          "] x [" + std::to_string(n) + "x" +
                          std::to_string(k) + "]^T",
                      s);
    return true;
  }

  /// run() for the kinds that must have an algorithm.
  io::Status runOrFail(Kind kind, const void *x, const float *xScales,
                       const void *w, const float *wScales, void *y, int64_t m,
                       int64_t n, int64_t k, void *stream) {
    io::Expected<bool> ran =
        run(kind, x, xScales, w, wScales, y, m, n, k, 0.0f, stream);
    if (!ran)
      return ran.error();
    if (!*ran)
      return failure(
          std::string(kind == Kind::Bf16 ? "BF16" : "FP8 block-scaled") +
              " GEMM [" + std::to_string(m) + "x" + std::to_string(k) +
              "] x [" + std::to_string(n) + "x" + std::to_string(k) +
              "]^T: no algorithm",
          CUBLAS_STATUS_NOT_SUPPORTED);
    return std::nullopt;
  }
};

io::Expected<std::unique_ptr<CublasLtGemm>>
CublasLtGemm::create(size_t workspaceBytes, bool tune) {
  std::unique_ptr<CublasLtGemm> gemm(new CublasLtGemm());
  gemm->state = std::make_unique<State>();
  gemm->state->tune = tune;
  if (cublasStatus_t s = cublasLtCreate(&gemm->state->handle))
    return *failure("creating a handle", s);
  if (cudaError_t e = cudaMalloc(&gemm->state->workspace, workspaceBytes))
    return io::makeError("cuBLASLt", "workspace of " +
                                         std::to_string(workspaceBytes) +
                                         " bytes: " + cudaGetErrorString(e));
  gemm->state->workspaceBytes = workspaceBytes;
  return gemm;
}

CublasLtGemm::~CublasLtGemm() = default;

io::Status CublasLtGemm::bf16(const void *x, const void *w, void *y, int64_t m,
                              int64_t n, int64_t k, void *stream) {
  return state->runOrFail(Kind::Bf16, x, nullptr, w, nullptr, y, m, n, k,
                          stream);
}

io::Status CublasLtGemm::fp8BlockScaled(const void *qx, const float *xScales,
                                        const void *qw, const float *wScales,
                                        void *y, int64_t m, int64_t n,
                                        int64_t k, void *stream) {
  return state->runOrFail(Kind::Fp8BlockScaled, qx, xScales, qw, wScales, y, m,
                          n, k, stream);
}

io::Expected<bool>
CublasLtGemm::fp8Fp32Out(const void *qx, const float *xScales, const void *qw,
                         const float *wScales, bool wTiles, float beta,
                         float *c, int64_t m, int64_t n, int64_t k,
                         void *stream) {
  return state->run(wTiles ? Kind::Fp8Fp32Tiles : Kind::Fp8Fp32Blocks, qx,
                    xScales, qw, wScales, c, m, n, k, beta, stream);
}

io::Status CublasLtGemm::general(GemmPrecision precision, const RowMajorGemm &g,
                                 float alpha, const void *a, const void *b,
                                 float beta, void *c, void *stream) {
  if (g.m == 0 || g.n == 0)
    return std::nullopt;
  // cuBLASLt takes no empty K: C = beta C, which is only C itself here.
  if (g.k == 0) {
    if (beta == 1.0f)
      return std::nullopt;
    return io::makeError("cuBLASLt", "a GEMM with K = 0 and beta != 1");
  }
  io::Expected<Prepared *> p = state->prepareGeneral(precision, g);
  if (!p)
    return p.error();
  // cuBLASLt's A is our B and its B our A (GemmLayout.h).
  cublasStatus_t s = cublasLtMatmul(
      state->handle, (*p)->desc, &alpha, b, (*p)->a, a, (*p)->b, &beta, c,
      (*p)->d, c, (*p)->d, &(*p)->algo, state->workspace, state->workspaceBytes,
      static_cast<cudaStream_t>(stream));
  if (s != CUBLAS_STATUS_SUCCESS)
    return failure("matmul [" + std::to_string(g.m) + "x" +
                       std::to_string(g.k) + "] x [" + std::to_string(g.k) +
                       "x" + std::to_string(g.n) + "]",
                   s);
  return std::nullopt;
}

io::Status CublasLtGemm::groupedBf16(const void *x,
                                     const std::vector<GemmGroup> &groups,
                                     void *y, int64_t n, int64_t k,
                                     void *stream) {
  for (const GemmGroup &g : groups)
    if (io::Status e = bf16(
            static_cast<const uint16_t *>(x) + g.firstRow * k, g.weight,
            static_cast<uint16_t *>(y) + g.firstRow * n, g.rows, n, k, stream))
      return e;
  return std::nullopt;
}

io::Status CublasLtGemm::groupedFp8(const void *qx, const float *xScales,
                                    const std::vector<GemmGroup> &groups,
                                    void *y, int64_t n, int64_t k,
                                    void *stream) {
  for (const GemmGroup &g : groups)
    if (io::Status e = fp8BlockScaled(
            static_cast<const uint8_t *>(qx) + g.firstRow * k,
            xScales + tiles(k) * g.firstRow, g.weight, g.weightScales,
            static_cast<uint16_t *>(y) + g.firstRow * n, g.rows, n, k, stream))
      return e;
  return std::nullopt;
}

} // namespace dsflow::cuda
