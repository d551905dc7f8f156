//===- CudaKernels.cpp - CUDA C++ for the plan's memory-bound kernels -----===//
#include "Codegen/CudaKernels.h"

#include "runtime/backends/cpu/Kernels.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <sstream>

namespace dsflow::codegen {
namespace {

constexpr int32_t kBlock = 256;
/// Grid-stride loops need no more blocks than this to fill an H100.
constexpr int64_t kMaxGrid = 132 * 16;

std::optional<std::string> cudaType(DType dtype) {
  switch (dtype) {
  case DTYPE_F32:
    return "float";
  case DTYPE_BF16:
    return "__nv_bfloat16";
  case DTYPE_I32:
    return "int";
  default:
    return std::nullopt;
  }
}

/// A double as a CUDA literal that reads back exactly.
std::string literal(double value) {
  char text[40];
  std::snprintf(text, sizeof(text), "%.17g", value);
  return text;
}

/// What a generator sees of its kernel.
class Operands {
public:
  Operands(const Plan &plan, const Kernel &kernel)
      : plan(plan), kernel(kernel) {}

  const Buffer &input(int i) const { return plan.buffers(kernel.inputs(i)); }
  const Buffer &output(int i) const { return plan.buffers(kernel.outputs(i)); }
  int64_t elements(const Buffer &b) const {
    int64_t n = 1;
    for (int64_t d : b.shape())
      n *= d;
    return n;
  }
  int64_t last(const Buffer &b) const {
    return b.shape_size() ? b.shape(b.shape_size() - 1) : 1;
  }
  bool arity(int inputs, int outputs) const {
    return kernel.inputs_size() == inputs && kernel.outputs_size() == outputs;
  }
  std::optional<double> f64(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name && a.has_f64())
        return a.f64();
    return std::nullopt;
  }
  std::optional<int64_t> i64(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name && a.has_i64())
        return a.i64();
    return std::nullopt;
  }
  /// "(const float *__restrict__ in0, ..., float *__restrict__ out0)", or
  /// none when a buffer's type is not handled.
  std::optional<std::string> parameters() const {
    std::string list;
    for (int i = 0; i < kernel.inputs_size(); ++i) {
      std::optional<std::string> type = cudaType(input(i).dtype());
      if (!type)
        return std::nullopt;
      list += (i ? ", const " : "const ") + *type + " *__restrict__ in" +
              std::to_string(i);
    }
    for (int i = 0; i < kernel.outputs_size(); ++i) {
      std::optional<std::string> type = cudaType(output(i).dtype());
      if (!type)
        return std::nullopt;
      list += (list.empty() ? "" : ", ") + *type + " *__restrict__ out" +
              std::to_string(i);
    }
    return "(" + list + ")";
  }

private:
  const Plan &plan;
  const Kernel &kernel;
};

std::optional<CudaFunction> function(const Operands &o, const std::string &code,
                                     int64_t grid, int32_t block,
                                     const std::string &before = "") {
  std::optional<std::string> parameters = o.parameters();
  if (!parameters || grid < 1)
    return std::nullopt;
  CudaFunction f;
  f.body = before + "extern \"C\" __global__ void __launch_bounds__(" +
           std::to_string(block) + ") @NAME@" + *parameters + " {\n" + code +
           "}\n";
  f.grid = grid;
  f.block = block;
  return f;
}

/// One thread per element (grid-stride): `statement` uses index i; n elements.
std::optional<CudaFunction> elementwise(const Operands &o, int64_t n,
                                        const std::string &statement) {
  int64_t grid = std::min((n + kBlock - 1) / kBlock, kMaxGrid);
  return function(o,
                  "  const long long n = " + std::to_string(n) +
                      "LL;\n  DSFLOW_GRID_STRIDE(i, n) {\n" + statement +
                      "  }\n",
                  grid, kBlock);
}

/// All inputs and outputs of the same size n.
std::optional<int64_t> sameSize(const Operands &o, int inputs, int outputs) {
  if (!o.arity(inputs, outputs))
    return std::nullopt;
  int64_t n = outputs ? o.elements(o.output(0)) : o.elements(o.input(0));
  for (int i = 0; i < inputs; ++i)
    if (o.elements(o.input(i)) != n)
      return std::nullopt;
  for (int i = 0; i < outputs; ++i)
    if (o.elements(o.output(i)) != n)
      return std::nullopt;
  return n;
}

std::optional<CudaFunction> add(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 2, 1);
  if (!n)
    return std::nullopt;
  return elementwise(o, *n, "    st(out0, i, ld(in0, i) + ld(in1, i));\n");
}

std::optional<CudaFunction> scale(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 1, 1);
  std::optional<double> factor = o.f64("factor");
  if (!n || !factor)
    return std::nullopt;
  return elementwise(o, *n,
                     "    st(out0, i, ld(in0, i) * float(" + literal(*factor) +
                         "));\n");
}

std::optional<CudaFunction> fill(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 0, 1);
  std::optional<double> value = o.f64("value");
  if (!n || !value)
    return std::nullopt;
  return elementwise(o, *n,
                     "    st(out0, i, float(" + literal(*value) + "));\n");
}

std::optional<CudaFunction> swiglu(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 2, 1);
  if (!n)
    return std::nullopt;
  return elementwise(o, *n,
                     "    float g = ld(in0, i);\n"
                     "    st(out0, i, g * sigmoid(g) * ld(in1, i));\n");
}

std::optional<CudaFunction> swigluGrad(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 3, 2);
  if (!n)
    return std::nullopt;
  return elementwise(o, *n,
                     "    float dy = ld(in0, i), g = ld(in1, i), u = ld(in2, "
                     "i), s = sigmoid(g);\n"
                     "    acc(out0, i, dy * u * s * (1.f + g * (1.f - s)));\n"
                     "    acc(out1, i, dy * g * s);\n");
}

std::optional<CudaFunction> accumulateGrad(const Operands &o) {
  std::optional<int64_t> n = sameSize(o, 1, 1);
  if (!n)
    return std::nullopt;
  return elementwise(o, *n, "    acc(out0, i, ld(in0, i));\n");
}

/// x [rows, dim] at input `x`: rows and dim, if the other sizes agree.
bool rowsOf(const Operands &o, int x, int64_t &rows, int64_t &dim) {
  dim = o.last(o.input(x));
  rows = dim ? o.elements(o.input(x)) / dim : 0;
  return rows > 0 && rows * dim == o.elements(o.input(x));
}

/// One block per row; `code` runs with row r and dim (kBlock threads).
std::optional<CudaFunction> perRow(const Operands &o, int64_t rows, int64_t dim,
                                   const std::string &code) {
  return function(o,
                  "  const long long dim = " + std::to_string(dim) +
                      "LL, r = blockIdx.x;\n" + code,
                  rows, kBlock);
}

std::optional<CudaFunction> rmsNorm(const Operands &o) {
  int64_t rows, dim;
  std::optional<double> eps = o.f64("epsilon");
  if (!o.arity(2, 2) || !rowsOf(o, 0, rows, dim) || !eps ||
      o.elements(o.input(1)) != dim || o.elements(o.output(1)) != rows)
    return std::nullopt;
  return perRow(
      o, rows, dim,
      "  float sumSq = 0.f;\n"
      "  for (long long i = threadIdx.x; i < dim; i += blockDim.x) {\n"
      "    float x = ld(in0, r * dim + i);\n"
      "    sumSq += x * x;\n"
      "  }\n"
      "  float inv = 1.f / sqrtf(blockSum(sumSq) / float(dim) + float(" +
          literal(*eps) +
          "));\n"
          "  if (threadIdx.x == 0) st(out1, r, inv);\n"
          "  for (long long i = threadIdx.x; i < dim; i += "
          "blockDim.x)\n"
          "    st(out0, r * dim + i, ld(in0, r * dim + i) * inv * "
          "ld(in1, i));\n");
}

std::optional<CudaFunction> rmsNormGrad(const Operands &o) {
  int64_t rows, dim;
  if (!o.arity(4, 1) || !rowsOf(o, 1, rows, dim) ||
      o.elements(o.input(0)) != rows * dim || o.elements(o.input(2)) != dim ||
      o.elements(o.input(3)) != rows)
    return std::nullopt;
  return perRow(
      o, rows, dim,
      "  float dot = 0.f;\n"
      "  for (long long i = threadIdx.x; i < dim; i += blockDim.x)\n"
      "    dot += ld(in0, r * dim + i) * ld(in2, i) * ld(in1, r * dim + i);\n"
      "  float inv = ld(in3, r);\n"
      "  float coef = blockSum(dot) * inv * inv * inv / float(dim);\n"
      "  for (long long j = threadIdx.x; j < dim; j += blockDim.x)\n"
      "    acc(out0, r * dim + j, inv * ld(in2, j) * ld(in0, r * dim + j) - "
      "ld(in1, r * dim + j) * coef);\n");
}

std::optional<CudaFunction> rmsNormWGrad(const Operands &o) {
  int64_t rows, dim;
  if (!o.arity(3, 1) || !rowsOf(o, 1, rows, dim) ||
      o.elements(o.input(0)) != rows * dim || o.elements(o.input(2)) != rows ||
      o.elements(o.output(0)) != dim)
    return std::nullopt;
  // One thread per column, the rows in order (as the CPU sums them).
  return function(o,
                  "  const long long rows = " + std::to_string(rows) +
                      "LL, dim = " + std::to_string(dim) +
                      "LL;\n"
                      "  long long i = blockIdx.x * (long long)blockDim.x + "
                      "threadIdx.x;\n"
                      "  if (i >= dim) return;\n"
                      "  float sum = 0.f;\n"
                      "  for (long long r = 0; r < rows; ++r)\n"
                      "    sum += ld(in0, r * dim + i) * ld(in1, r * dim + i) "
                      "* ld(in2, r);\n"
                      "  acc(out0, i, sum);\n",
                  (dim + kBlock - 1) / kBlock, kBlock);
}

/// Rotary embedding of x [batch, seq, heads, dim]: one thread per pair, the
/// angle in double as on the CPU, the frequencies (YaRN included) computed by
/// the CPU backend's own function.
std::optional<CudaFunction> rope(const Operands &o, bool backward) {
  if (!o.arity(1, 1) || o.input(0).shape_size() != 4 ||
      o.elements(o.output(0)) != o.elements(o.input(0)))
    return std::nullopt;
  int64_t seq = o.input(0).shape(1), heads = o.input(0).shape(2),
          dim = o.input(0).shape(3);
  std::optional<double> theta = o.f64("theta");
  if (!theta || dim % 2)
    return std::nullopt;
  std::optional<cpu::YarnParams> yarn;
  if (std::optional<double> factor = o.f64("yarn_factor")) {
    std::optional<int64_t> original = o.i64("yarn_original_max_position");
    std::optional<double> fast = o.f64("yarn_beta_fast"),
                          slow = o.f64("yarn_beta_slow");
    if (!original || !fast || !slow)
      return std::nullopt;
    yarn = cpu::YarnParams{*factor, *original, *fast, *slow};
  }
  std::vector<double> invFreq =
      cpu::ropeInvFreq(dim, *theta, yarn ? &*yarn : nullptr);
  std::string table = "static __constant__ double @NAME@_inv_freq[] = {";
  for (size_t i = 0; i < invFreq.size(); ++i)
    table += (i ? ", " : "") + literal(invFreq[i]);
  table += "};\n";
  int64_t half = dim / 2, pairs = o.elements(o.input(0)) / 2;
  std::string rotate =
      backward ? "    acc(out0, base, float(x0 * c + x1 * sn));\n"
                 "    acc(out0, base + 1, float(x1 * c - x0 * sn));\n"
               : "    st(out0, base, float(x0 * c - x1 * sn));\n"
                 "    st(out0, base + 1, float(x0 * sn + x1 * c));\n";
  int64_t grid = std::min((pairs + kBlock - 1) / kBlock, kMaxGrid);
  return function(
      o,
      "  const long long pairs = " + std::to_string(pairs) + "LL, half = " +
          std::to_string(half) + "LL, heads = " + std::to_string(heads) +
          "LL, seq = " + std::to_string(seq) +
          "LL;\n"
          "  DSFLOW_GRID_STRIDE(p, pairs) {\n"
          "    long long i = p % half, s = (p / half / heads) % "
          "seq, base = 2 * p;\n"
          "    double sn, c;\n"
          "    sincos(double(s) * @NAME@_inv_freq[i], &sn, &c);\n"
          "    double x0 = ld(in0, base), x1 = ld(in0, base + 1);\n" +
          rotate + "  }\n",
      grid, kBlock, table);
}

/// Token ids and labels are checked on the host (the data loader's tokens
/// are below the vocabulary); an id out of range leaves its row alone.

/// y[n, :] = table[ids[n], :]: one thread per element.
std::optional<CudaFunction> embedding(const Operands &o) {
  if (!o.arity(2, 1) || o.input(0).shape_size() != 2 ||
      o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.input(0).shape(0), hidden = o.input(0).shape(1),
          tokens = o.elements(o.input(1));
  if (o.elements(o.output(0)) != tokens * hidden)
    return std::nullopt;
  return elementwise(o, tokens * hidden,
                     "    long long t = i / " + std::to_string(hidden) +
                         "LL, h = i % " + std::to_string(hidden) +
                         "LL;\n"
                         "    int id = in1[t];\n"
                         "    if (id >= 0 && id < " +
                         std::to_string(vocab) + ") st(out0, i, ld(in0, id * " +
                         std::to_string(hidden) + "LL + h));\n");
}

/// dtable[ids[n], h] += dy[n, h]: a thread per column h, the tokens in order
/// (as the CPU adds them, and with no atomics).
std::optional<CudaFunction> embeddingWGrad(const Operands &o) {
  if (!o.arity(2, 1) || o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t hidden = o.last(o.input(0)), tokens = o.elements(o.input(1));
  int64_t vocab = hidden ? o.elements(o.output(0)) / hidden : 0;
  if (!vocab || o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != vocab * hidden)
    return std::nullopt;
  return function(o,
                  "  const long long hidden = " + std::to_string(hidden) +
                      "LL;\n"
                      "  long long h = blockIdx.x * (long long)blockDim.x + "
                      "threadIdx.x;\n"
                      "  if (h >= hidden) return;\n"
                      "  for (long long n = 0; n < " +
                      std::to_string(tokens) +
                      "LL; ++n) {\n"
                      "    int id = in1[n];\n"
                      "    if (id >= 0 && id < " +
                      std::to_string(vocab) +
                      ") acc(out0, id * hidden + h, ld(in0, n * hidden + h));\n"
                      "  }\n",
                  (hidden + kBlock - 1) / kBlock, kBlock);
}

/// Mean cross-entropy: a block per token computes its log-sum-exp (saved)
/// and adds (lse - logit[label]) / tokens to the loss, which starts at zero
/// (the runtime zeroes a forward kernel's outputs); the order of those adds
/// is the GPU's.
std::optional<CudaFunction> crossEntropy(const Operands &o) {
  if (!o.arity(2, 2) || o.input(1).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.last(o.input(0)), tokens = o.elements(o.input(1));
  if (o.elements(o.input(0)) != tokens * vocab ||
      o.elements(o.output(0)) != 1 || o.elements(o.output(1)) != tokens)
    return std::nullopt;
  return perRow(o, tokens, vocab,
                "  float most = -__int_as_float(0x7f800000);\n"
                "  for (long long v = threadIdx.x; v < dim; v += blockDim.x)\n"
                "    most = fmaxf(most, ld(in0, r * dim + v));\n"
                "  most = blockMax(most);\n"
                "  float sum = 0.f;\n"
                "  for (long long v = threadIdx.x; v < dim; v += blockDim.x)\n"
                "    sum += expf(ld(in0, r * dim + v) - most);\n"
                "  float lse = most + logf(blockSum(sum));\n"
                "  int label = in1[r];\n"
                "  if (threadIdx.x == 0 && label >= 0 && label < dim) {\n"
                "    st(out1, r, lse);\n"
                "    atomicAddTo(out0, (lse - ld(in0, r * dim + label)) / " +
                    std::to_string(tokens) +
                    ".f);\n"
                    "  }\n");
}

/// dlogits += (softmax - onehot(label)) * dLoss / tokens, one thread per
/// logit.
std::optional<CudaFunction> crossEntropyGrad(const Operands &o) {
  if (!o.arity(4, 1) || o.input(2).dtype() != DTYPE_I32)
    return std::nullopt;
  int64_t vocab = o.last(o.input(1)), tokens = o.elements(o.input(2));
  if (o.elements(o.input(0)) != 1 || o.elements(o.input(1)) != tokens * vocab ||
      o.elements(o.input(3)) != tokens ||
      o.elements(o.output(0)) != tokens * vocab)
    return std::nullopt;
  return elementwise(o, tokens * vocab,
                     "    long long t = i / " + std::to_string(vocab) +
                         "LL, v = i % " + std::to_string(vocab) +
                         "LL;\n"
                         "    float p = expf(ld(in1, i) - ld(in3, t));\n"
                         "    acc(out0, i, (p - (v == in2[t] ? 1.f : 0.f)) * "
                         "ld(in0, 0) / " +
                         std::to_string(tokens) + ".f);\n");
}

/// combine's gradients read [x, weights [T, k], indices, rowSource [T*k]]:
/// T and k, if the routing operands agree.
bool combineRouting(const Operands &o, int64_t &tokens, int64_t &topK) {
  topK = o.last(o.input(1));
  tokens = topK ? o.elements(o.input(1)) / topK : 0;
  return tokens > 0 && o.input(3).dtype() == DTYPE_I32 &&
         o.elements(o.input(2)) == tokens * topK &&
         o.elements(o.input(3)) == tokens * topK;
}

/// dRows[r] += w[p] dy[p / k] with p = rowSource[r]: a gather, one thread
/// per element of the rows.
std::optional<CudaFunction> combineGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!o.arity(4, 1) || !combineRouting(o, tokens, topK))
    return std::nullopt;
  int64_t hidden = o.last(o.input(0));
  if (o.elements(o.input(0)) != tokens * hidden ||
      o.elements(o.output(0)) != tokens * topK * hidden)
    return std::nullopt;
  std::string h = std::to_string(hidden) + "LL", k = std::to_string(topK);
  return elementwise(o, tokens * topK * hidden,
                     "    long long r = i / " + h +
                         ";\n"
                         "    int p = in3[r];\n"
                         "    acc(out0, i, ld(in1, p) * ld(in0, (p / " +
                         k + ") * " + h + " + i % " + h + "));\n");
}

/// dw[p] += rowDots[r] / w[p] for p = rowSource[r] (0 where w is 0): a
/// permutation, so one thread per row writes one weight.
std::optional<CudaFunction> combineWeightsGrad(const Operands &o) {
  int64_t tokens, topK;
  if (!o.arity(4, 1) || !combineRouting(o, tokens, topK) ||
      o.elements(o.input(0)) != tokens * topK ||
      o.elements(o.output(0)) != tokens * topK)
    return std::nullopt;
  return elementwise(o, tokens * topK,
                     "    int p = in3[i];\n"
                     "    float w = ld(in1, p);\n"
                     "    if (w != 0.f) acc(out0, p, ld(in0, i) / w);\n");
}

using Generator = std::function<std::optional<CudaFunction>(const Operands &)>;

const std::map<std::string, Generator> &generators() {
  static const std::map<std::string, Generator> table = {
      {"add", add},
      {"scale", scale},
      {"fill", fill},
      {"swiglu", swiglu},
      {"swiglu_grad", swigluGrad},
      {"accumulate_grad", accumulateGrad},
      {"rms_norm", rmsNorm},
      {"rms_norm_grad", rmsNormGrad},
      {"rms_norm_wgrad", rmsNormWGrad},
      {"rope", [](const Operands &o) { return rope(o, false); }},
      {"rope_grad", [](const Operands &o) { return rope(o, true); }},
      {"embedding", embedding},
      {"embedding_wgrad", embeddingWGrad},
      {"cross_entropy", crossEntropy},
      {"cross_entropy_grad", crossEntropyGrad},
      {"combine_grad", combineGrad},
      {"combine_weights_grad", combineWeightsGrad},
  };
  return table;
}

} // namespace

std::optional<CudaFunction> generateCudaFunction(const Plan &plan,
                                                 const Kernel &kernel) {
  auto it = generators().find(kernel.op());
  if (it == generators().end())
    return std::nullopt;
  return it->second(Operands(plan, kernel));
}

const char *cudaModulePrelude() {
  return R"(// Generated by dsflow-compile --cuda (compiler/Codegen).
#include <cuda_bf16.h>

__device__ __forceinline__ float ld(const float *p, long long i) { return p[i]; }
__device__ __forceinline__ float ld(const __nv_bfloat16 *p, long long i) {
  return __bfloat162float(p[i]);
}
__device__ __forceinline__ void st(float *p, long long i, float v) { p[i] = v; }
__device__ __forceinline__ void st(__nv_bfloat16 *p, long long i, float v) {
  p[i] = __float2bfloat16(v);
}
// Backward kernels add into their outputs, as the CPU's do.
__device__ __forceinline__ void acc(float *p, long long i, float v) { p[i] += v; }
__device__ __forceinline__ void acc(__nv_bfloat16 *p, long long i, float v) {
  p[i] = __float2bfloat16(__bfloat162float(p[i]) + v);
}
__device__ __forceinline__ float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

// The sum of v over the block (blockDim.x a multiple of 32), in every thread.
__device__ float blockSum(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads(); // an earlier call may still read partial
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x >> 5) ? partial[lane] : 0.f;
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// The maximum of v over the block, in every thread.
__device__ float blockMax(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  __syncthreads();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = lane < int(blockDim.x >> 5) ? partial[lane] : -__int_as_float(0x7f800000);
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

__device__ __forceinline__ void atomicAddTo(float *p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomicAddTo(__nv_bfloat16 *p, float v) {
  atomicAdd(p, __float2bfloat16(v));
}

#define DSFLOW_GRID_STRIDE(i, n)                                               \
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < (n); \
       i += (long long)gridDim.x * blockDim.x)

)";
}

} // namespace dsflow::codegen
