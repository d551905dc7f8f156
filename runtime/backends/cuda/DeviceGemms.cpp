//===- DeviceGemms.cpp - The linear layers' GEMMs on a GPU ----------------===//
#include "runtime/backends/cuda/DeviceGemms.h"
#include "plan/ComposedOps.h"
#include "plan/PlanFile.h"
#include "runtime/backends/cpu/LinearGemms.h"

namespace dsflow::cuda {

namespace {

int64_t lastDim(const Buffer &b) {
  return b.shape_size() ? b.shape(b.shape_size() - 1) : 1;
}

/// Rows of `elements` in rows of `width` (none when the width is 0).
int64_t rowsOf(int64_t elements, int64_t width) {
  return width ? elements / width : 0;
}

} // namespace

void GemmEngine::operator()(bool transA, bool transB, int64_t m, int64_t n,
                            int64_t k, float alpha, DeviceArray a, int64_t lda,
                            DeviceArray b, int64_t ldb, float beta,
                            DeviceArray c, int64_t ldc) {
  if (error)
    return;
  if (a.elementBytes != b.elementBytes) {
    error = io::makeError("cuda", "a GEMM with one BF16 and one FP32 operand");
    return;
  }
  RowMajorGemm g{transA, transB, m, n, k, lda, ldb, ldc};
  GemmPrecision precision =
      a.elementBytes != 2   ? (tf32 ? GemmPrecision::Tf32 : GemmPrecision::Fp32)
      : c.elementBytes == 2 ? GemmPrecision::Bf16
                            : GemmPrecision::Bf16Fp32Out;
  error = gemm.general(precision, g, alpha,
                       reinterpret_cast<const void *>(a.address),
                       reinterpret_cast<const void *>(b.address), beta,
                       reinterpret_cast<void *>(c.address), stream);
}

LinearShape linearShapeOf(const Plan &plan, const Kernel &k) {
  const Buffer &first = plan.buffers(k.inputs(0));
  const Buffer &second = plan.buffers(k.inputs(1));
  if (k.op() == "linear_wgrad") { // [dy, x]
    int64_t out = lastDim(first);
    return {rowsOf(numElements(first), out), out, lastDim(second)};
  }
  // [x, W] or [dy, W]
  int64_t out = second.shape(0), in = second.shape(1);
  return {rowsOf(numElements(first), k.op() == "linear" ? in : out), out, in};
}

bool hasDeviceGemms(const Plan &plan, const Kernel &kernel) {
  return isLinearGemmOp(kernel.op()) && composedPrecision(plan, kernel);
}

io::Status runDeviceGemms(CublasLtGemm &gemm, const Plan &plan, int32_t index,
                          const std::function<DeviceArray(int32_t)> &operand,
                          CUstream stream, bool tf32) {
  const Kernel &k = plan.kernels(index);
  auto in = [&](int i) { return operand(k.inputs(i)); };
  auto out = [&](int i) { return operand(k.outputs(i)); };
  auto input = [&](int i) -> const Buffer & {
    return plan.buffers(k.inputs(i));
  };
  GemmEngine engine{gemm, tf32, stream, std::nullopt};
  const std::string &op = k.op();
  // Shapes as the CPU binders derive them (BindDense.cpp, BindMoe.cpp).
  if (op == "linear" || op == "linear_grad" || op == "linear_wgrad") {
    LinearShape s = linearShapeOf(plan, k);
    if (op == "linear")
      cpu::linearForwardWith(engine, in(0), in(1), out(0), s.tokens, s.out,
                             s.in);
    else if (op == "linear_grad")
      cpu::linearBackwardBWith(engine, in(0), in(1), out(0), s.tokens, s.out,
                               s.in);
    else
      cpu::linearBackwardWWith(engine, in(0), in(1), out(0), s.tokens, s.out,
                               s.in);
  } else {
    int64_t hidden = lastDim(input(0));
    int64_t m = rowsOf(numElements(input(0)), hidden);
    if (op == "mtp_project")
      cpu::mtpProjectForwardWith(engine, in(0), in(1), in(2), out(0), m,
                                 hidden);
    else if (op == "mtp_project_grad")
      cpu::mtpProjectBackwardBWith(engine, in(0), in(1), out(0), out(1), m,
                                   hidden);
    else
      cpu::mtpProjectBackwardWWith(engine, in(0), in(1), in(2), out(0), m,
                                   hidden);
  }
  if (engine.error)
    return io::makeError("kernel " + std::to_string(index) + " (" + op + ")",
                         engine.error->message);
  return std::nullopt;
}

} // namespace dsflow::cuda
