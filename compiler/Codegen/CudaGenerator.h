//===- CudaGenerator.h - What the CUDA generators share ----------*- C++
//-*-===//
//
// Private to compiler/Codegen: the view a generator has of its plan kernel
// (Operands), the helpers that turn generated code into a CudaFunction, and
// the generators, one file per family (CudaElementwise, CudaNorms, CudaRope,
// CudaVocabulary, CudaRouting, CudaDispatch, CudaAttention); CudaKernels.cpp
// maps ops to them.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_CODEGEN_CUDAGENERATOR_H
#define DSFLOW_COMPILER_CODEGEN_CUDAGENERATOR_H

#include "Codegen/CudaKernels.h"

#include <optional>
#include <string>
#include <vector>

namespace dsflow::codegen {

/// Threads per block of most generated functions.
constexpr int32_t kBlock = 256;
/// Grid-stride loops need no more blocks than this to fill an H100.
constexpr int64_t kMaxGrid = 132 * 16;

/// The CUDA type of a storage type (FP32, BF16, I32); none for others.
std::optional<std::string> cudaType(DType dtype);

/// A double as a CUDA literal that reads back exactly.
std::string literal(double value);

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
  /// Whether the kernel adds into outputs that hold data (a gradient
  /// accumulated in place); otherwise the runtime zeroes them first, so a
  /// backward kernel's "+=" can start from zero without reading them.
  bool accumulates() const { return kernel.accumulates(); }
  /// Declares `name`[width] holding output `k`'s values at `at` when the
  /// kernel accumulates, zeros otherwise.
  std::string startOutput(int k, const std::string &name, const std::string &at,
                          const std::string &width = "W") const {
    return "    float " + name + "[" + width + "];\n    " +
           (accumulates() ? "ldv<" + width + ">(out" + std::to_string(k) +
                                ", " + at + ", " + name + ");\n"
                          : "for (int j = 0; j < " + width + "; ++j) " + name +
                                "[j] = 0.f;\n");
  }
  int inputs() const { return kernel.inputs_size(); }
  int outputs() const { return kernel.outputs_size(); }
  bool arity(int inputs, int outputs) const {
    return kernel.inputs_size() == inputs && kernel.outputs_size() == outputs;
  }
  std::optional<double> f64(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name && a.has_f64())
        return a.f64();
    return std::nullopt;
  }
  std::optional<std::string> str(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name && a.has_str())
        return a.str();
    return std::nullopt;
  }
  std::optional<bool> boolean(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name && a.has_boolean())
        return a.boolean();
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

/// The function running `code` on `grid` x `block` threads; `before` goes
/// ahead of it (tables, includes), `qualifiers` into its declaration (a
/// cluster shape). None when a buffer's type is not handled.
/// `extraParameters` (", type name, ...") follow the buffers'.
std::optional<CudaFunction> function(const Operands &o, const std::string &code,
                                     int64_t grid, int32_t block,
                                     const std::string &before = "",
                                     const std::string &qualifiers = "",
                                     const std::string &extraParameters = "");

/// One thread per element (grid-stride): `statement` uses index i; n elements.
std::optional<CudaFunction> elementwise(const Operands &o, int64_t n,
                                        const std::string &statement);

/// Elements per thread step: 8 (16-byte BF16 accesses) when `n` allows.
int vectorWidth(int64_t n);

/// W elements per thread step (grid-stride over n / W, W = vectorWidth):
/// x<k>[W] hold inputs `loaded` at element i, y<k>[W] the outputs (when the
/// body `adds` into them: their values if the kernel accumulates, else
/// zeros), and `body` runs for each j < W.
std::optional<CudaFunction> vectorized(const Operands &o, int64_t n,
                                       const std::vector<int> &loaded,
                                       int outputs, bool adds,
                                       const std::string &body);

/// All inputs and outputs of the same size n.
std::optional<int64_t> sameSize(const Operands &o, int inputs, int outputs);

/// x [rows, dim] at input `x`: rows and dim, if the other sizes agree.
bool rowsOf(const Operands &o, int x, int64_t &rows, int64_t &dim);

/// One block per row; `code` runs with row r and dim, on `block` threads.
std::optional<CudaFunction> perRow(const Operands &o, int64_t rows, int64_t dim,
                                   const std::string &code,
                                   int32_t block = kBlock,
                                   const std::string &extraParameters = "");

/// Threads for a row of `dim` elements taken W at a time: enough for one
/// piece each, in whole warps, at most kBlock.
int32_t rowThreads(int64_t dim);

/// A row's elements spread over the block in W-wide pieces, at most 16 per
/// thread so that a row stays in registers between passes: "constexpr int
/// W, C" (width, pieces per thread). None for rows too long to hold.
std::optional<std::string> rowPieces(int64_t dim);

/// `code` for each piece c of this thread that lies in the row, with its
/// first element e.
std::string forEachPiece(const std::string &code);

// The generators, one per op (none when the kernel's operands do not fit).
// CudaElementwise.cpp:
std::optional<CudaFunction> add(const Operands &o);
std::optional<CudaFunction> scale(const Operands &o);
std::optional<CudaFunction> fill(const Operands &o);
std::optional<CudaFunction> swiglu(const Operands &o);
std::optional<CudaFunction> swigluGrad(const Operands &o);
std::optional<CudaFunction> accumulateGrad(const Operands &o);
std::optional<CudaFunction> reshape(const Operands &o);
std::optional<CudaFunction> tokenWindow(const Operands &o);
/// split (`split`) or concat.
std::optional<CudaFunction> pieces(const Operands &o, bool split);
// CudaNorms.cpp:
std::optional<CudaFunction> rmsNorm(const Operands &o);
std::optional<CudaFunction> rmsNormGrad(const Operands &o);
std::optional<CudaFunction> rmsNormWGrad(const Operands &o);
// CudaRope.cpp (rope_grad with `backward`):
std::optional<CudaFunction> rope(const Operands &o, bool backward);
// CudaVocabulary.cpp:
std::optional<CudaFunction> embedding(const Operands &o);
std::optional<CudaFunction> embeddingWGrad(const Operands &o);
std::optional<CudaFunction> crossEntropy(const Operands &o);
std::optional<CudaFunction> crossEntropyGrad(const Operands &o);
// CudaDispatch.cpp (dispatch takes two launches: the sort, the copy):
std::vector<CudaFunction> dispatch(const Operands &o);
std::optional<CudaFunction> dispatchGrad(const Operands &o);
std::optional<CudaFunction> combine(const Operands &o);
std::optional<CudaFunction> combineGrad(const Operands &o);
std::optional<CudaFunction> combineWeightsGrad(const Operands &o);

/// The MLA attention core's forward, and its backward in three launches
/// (CudaAttention.cpp; none when not generated).
std::optional<CudaFunction> mlaAttention(const Operands &o);
std::vector<CudaFunction> mlaAttentionGrad(const Operands &o);

/// The router's forward and its logit gradient, and the sequence-wise
/// balance loss with its gradient (CudaRouting.cpp).
std::optional<CudaFunction> moeGate(const Operands &o);
std::optional<CudaFunction> moeGateGrad(const Operands &o);
std::optional<CudaFunction> balanceLoss(const Operands &o);
std::optional<CudaFunction> balanceLossGrad(const Operands &o);

} // namespace dsflow::codegen

#endif // DSFLOW_COMPILER_CODEGEN_CUDAGENERATOR_H
