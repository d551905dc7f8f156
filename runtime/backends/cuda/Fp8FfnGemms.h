//===- Fp8FfnGemms.h - The FFNs' GEMMs on FP8 tensor cores ------*- C++ -*-===//
//
// The SwiGLU FFNs (runtime/backends/cpu/FfnSteps.h) multiply with the three
// forms of a linear layer: their GEMMs under the FP8 recipe run as the linear
// layers' do (Fp8LinearSteps.h), operands quantized from FP32 into E4M3 codes
// and cuBLASLt-ordered scales, the activations per 1x128 tile along the
// contraction (128x1 in the weight gradients), the weights per 128x128 block.
// That is what the CPU's FFN emulates: it quantizes each inner GEMM's
// activation the same way, and its binding the weights. A GEMM the tensor
// cores do not take (an expert's rows leave the output unaligned, or
// cuBLASLt has no algorithm) is emulated, with the weight quantized to E4M3
// and back per block as the binding does. Kept apart from the device code so
// that a host engine runs the same mapping (Fp8LinearStepsTest.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_FP8FFNGEMMS_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_FP8FFNGEMMS_H

#include "runtime/backends/cuda/Fp8LinearSteps.h"

#include <cstdint>

namespace dsflow::cuda {

/// An FFN engine E's linear forms on the FP8 tensor cores, over Emulated's
/// (cpu::EmulatedFfnGemms). E provides
///   bool fp8Linear(const Fp8Gemm &g, In xSource, In wSource, Out c)
///     runs g (false: it did not, nothing written);
///   In blockQuantized(In w, int64_t rows, int64_t cols)
///     w [rows, cols] as the emulation reads a weight;
///   bool fp8SwigluLinear(const Fp8Gemm &g, In gate, In up, In w, Out c)
///     fp8Linear with x = silu(gate) * up (SwiGLU fused into x's
///     quantization);
///   void counted(bool onTensorCores)   once per GEMM form.
template <typename E, typename Emulated, typename In, typename Out>
class Fp8FfnGemms : public Emulated {
public:
  void linearForward(In x, In w, Out y, int64_t n, int64_t out, int64_t in) {
    if (!onTensorCores("linear", x, w, y, n, out, in))
      Emulated::linearForward(x, self().blockQuantized(w, out, in), y, n, out,
                              in);
  }
  void linearBackwardB(In dy, In w, Out dx, int64_t n, int64_t out,
                       int64_t in) {
    if (!onTensorCores("linear_grad", dy, w, dx, n, out, in))
      Emulated::linearBackwardB(dy, self().blockQuantized(w, out, in), dx, n,
                                out, in);
  }
  void linearBackwardW(In dy, In x, Out dw, int64_t n, int64_t out,
                       int64_t in) {
    if (!onTensorCores("linear_wgrad", dy, x, dw, n, out, in))
      Emulated::linearBackwardW(dy, x, dw, n, out, in);
  }
  void downProjection(In g, In u, In down, Out y, int64_t n, int64_t hidden,
                      int64_t inter) {
    if (n == 0) // an expert without rows: nothing to compute
      return;
    std::optional<Fp8Gemm> gemm = fp8LinearGemm("linear", n, hidden, inter);
    bool ran = fp8GemmSizesSupported(*gemm) &&
               self().fp8SwigluLinear(*gemm, g, u, down, y);
    self().counted(ran);
    if (!ran)
      Emulated::downProjection(g, u, self().blockQuantized(down, hidden, inter),
                               y, n, hidden, inter);
  }

private:
  E &self() { return static_cast<E &>(*this); }
  /// The form `op` with its two inputs in plan order (Fp8LinearSteps.h).
  bool onTensorCores(const char *op, In first, In second, Out c, int64_t n,
                     int64_t out, int64_t in) {
    if (n == 0) // an expert without rows: nothing to compute
      return true;
    std::optional<Fp8Gemm> g = fp8LinearGemm(op, n, out, in);
    In sources[] = {first, second};
    bool ran =
        g && fp8GemmSizesSupported(*g) &&
        self().fp8Linear(*g, sources[g->x.input], sources[g->w.input], c);
    self().counted(ran);
    return ran;
  }
};

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_FP8FFNGEMMS_H
