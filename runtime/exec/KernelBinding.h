//===- KernelBinding.h - Plan kernels bound to CPU kernels ------*- C++ -*-===//
//
// Binding turns one plan kernel into a closure over typed pointers and sizes.
// A binder checks everything its CPU kernel relies on: operand counts, element
// types and that the buffers' element counts fit together, so that no plan,
// however corrupted, makes a kernel read or write outside its buffers. Data
// (token ids, expert indices) is checked by the kernels themselves at run time.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_KERNELBINDING_H
#define DSFLOW_RUNTIME_EXEC_KERNELBINDING_H

#include "exec/Fp8Emulation.h"
#include "exec/Memory.h"
#include "exec/QuantizedParameters.h"
#include "io/Status.h"
#include "plan/PlanFile.h"
#include "runtime/backends/cpu/Fp8.h"
#include "runtime/backends/cpu/Kernels.h"

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsflow::exec {

class ExpertParallel;

/// A bound kernel: runs it, returning its status.
using BoundKernel = std::function<cpu::Status()>;

/// What a binder sees of its kernel, with checked accessors. T is the float
/// element type of the plan.
template <typename T> class BindContext {
public:
  BindContext(const Plan &plan, int32_t index, Memory &memory)
      : plan(plan), kernel(plan.kernels(index)), memory(memory),
        where("kernel " + std::to_string(index) + " (" + kernel.op() + ")"),
        emulation(KernelEmulation::of(kernel)) {
    check(!emulation.unsupportedFormat, "unsupported FP8 format");
  }

  int numInputs() const { return kernel.inputs_size(); }
  int numOutputs() const { return kernel.outputs_size(); }

  /// Operand accessors never read past the kernel's lists: an index out of
  /// range records a problem and yields an empty buffer (or a null pointer),
  /// so a binder can check sizes before it knows the arity is right.
  const Buffer &input(int i) { return buffer(kernel.inputs(), i, "input"); }
  const Buffer &output(int i) { return buffer(kernel.outputs(), i, "output"); }
  int64_t inputSize(int i) { return numElements(input(i)); }
  int64_t outputSize(int i) { return numElements(output(i)); }
  /// The last dimension of input i (1 for a scalar).
  int64_t inputLast(int i) {
    const Buffer &b = input(i);
    return b.shape_size() ? b.shape(b.shape_size() - 1) : 1;
  }
  int64_t inputDim(int i, int d) {
    const Buffer &b = input(i);
    return d < b.shape_size() ? b.shape(d) : 0;
  }

  /// Typed pointers; each records a type error when the dtype does not fit.
  /// An FP8 GEMM operand (Fp8Emulation.h) is read through a scratch copy
  /// quantized to E4M3 and back just before the kernel runs; a weight's copy
  /// is shared with the run's other kernels (QuantizedParameters.h).
  const T *in(int i) {
    const T *p = typed<T>(kernel.inputs(), i, floatType());
    std::optional<Fp8Role> role = emulation.inputRole(kernel, i);
    if (!p || !role)
      return p;
    int64_t cols = inputLast(i), n = inputSize(i);
    int64_t rows = cols ? n / cols : 0;
    int32_t b = kernel.inputs(i);
    if (quantizedParameters && *role == Fp8Role::Blocks &&
        plan.buffers(b).kind() == PARAMETER) {
      auto use =
          quantizedParameters->use(b, p, rows, cols, *role, emulation.ue8m0);
      before.push_back(std::move(use.refresh));
      return use.copy;
    }
    auto copy = std::make_shared<std::vector<T>>(n);
    bool scalesUe8m0 = emulation.ue8m0;
    Fp8Role how = *role;
    before.push_back(
        [=] { fakeQuantize(p, copy->data(), rows, cols, how, scalesUe8m0); });
    return copy->data();
  }
  /// The scaling of the activations a fused kernel quantizes itself (the
  /// GEMM operands inside an FFN); nullopt unless the kernel is FP8.
  std::optional<cpu::Fp8ScaleOptions> innerFp8() const {
    if (!emulation.fp8)
      return std::nullopt;
    cpu::Fp8ScaleOptions options;
    options.ue8m0Scales = emulation.ue8m0;
    return options;
  }
  T *out(int i) { return typed<T>(kernel.outputs(), i, floatType()); }
  const int32_t *inIds(int i) {
    return typed<int32_t>(kernel.inputs(), i, DTYPE_I32);
  }
  int32_t *outIds(int i) {
    return typed<int32_t>(kernel.outputs(), i, DTYPE_I32);
  }

  /// Attributes; a missing one records an error.
  double f64(const std::string &name) { return attr(name).f64(); }
  int64_t i64(const std::string &name) { return attr(name).i64(); }
  std::string str(const std::string &name) { return attr(name).str(); }
  bool boolean(const std::string &name) { return attr(name).boolean(); }
  bool has(const std::string &name) const { return find(name) != nullptr; }

  /// Records `message` unless `ok` (the first problem wins).
  bool check(bool ok, const std::string &message) {
    if (!ok && problem.empty())
      problem = message;
    return ok;
  }
  bool arity(int inputs, int outputs) {
    return check(numInputs() == inputs && numOutputs() == outputs,
                 "expects " + std::to_string(inputs) + " inputs and " +
                     std::to_string(outputs) + " outputs, has " +
                     std::to_string(numInputs()) + " and " +
                     std::to_string(numOutputs()));
  }
  /// The binding's result: `kernel` unless a check failed, with the FP8
  /// emulation's steps around it.
  io::Expected<BoundKernel> finish(BoundKernel bound) {
    if (emulation.quantizesRowsAfter(kernel)) {
      // FP8 dispatch: the rows (which the experts' backward reads) are E4M3.
      T *rows = out(0);
      int64_t cols = inputLast(0), n = outputSize(0);
      bool scalesUe8m0 = emulation.ue8m0;
      if (rows && cols > 0)
        after.push_back([=] {
          fakeQuantize(rows, rows, n / cols, cols, Fp8Role::RowTiles,
                       scalesUe8m0);
        });
    }
    if (!problem.empty())
      return io::makeError(where, problem);
    if (before.empty() && after.empty())
      return bound;
    return BoundKernel([before = before, after = after, bound] {
      for (const auto &step : before)
        step();
      cpu::Status status = bound();
      for (const auto &step : after)
        step();
      return status;
    });
  }

  const Plan &plan;
  const Kernel &kernel;
  Memory &memory;
  const std::string where;
  /// This rank's EP group when the routed experts are spread over ranks.
  ExpertParallel *expertParallel = nullptr;
  /// The executor's shared FP8 weight copies (null: one copy per kernel).
  QuantizedParameters<T> *quantizedParameters = nullptr;

private:
  static constexpr DType floatType() {
    return sizeof(T) == 8 ? DTYPE_F64 : DTYPE_F32;
  }
  using Indices = google::protobuf::RepeatedField<int32_t>;
  bool inRange(const Indices &list, int i, const char *what) {
    return check(i >= 0 && i < list.size(),
                 std::string("has no ") + what + " " + std::to_string(i));
  }
  const Buffer &buffer(const Indices &list, int i, const char *what) {
    static const Buffer empty;
    return inRange(list, i, what) ? plan.buffers(list.Get(i)) : empty;
  }
  template <typename U> U *typed(const Indices &list, int i, DType expected) {
    if (!inRange(list, i, "operand"))
      return nullptr;
    int32_t b = list.Get(i);
    check(plan.buffers(b).dtype() == expected,
          "buffer '" + plan.buffers(b).name() + "' has the wrong element type");
    return reinterpret_cast<U *>(memory.data(b));
  }
  const Attribute *find(const std::string &name) const {
    for (const Attribute &a : kernel.attributes())
      if (a.name() == name)
        return &a;
    return nullptr;
  }
  const Attribute &attr(const std::string &name) {
    static const Attribute empty;
    const Attribute *a = find(name);
    check(a != nullptr, "missing attribute '" + name + "'");
    return a ? *a : empty;
  }

  std::string problem;
  KernelEmulation emulation;
  std::vector<std::function<void()>> before, after;
};

template <typename T>
using Binder = io::Expected<BoundKernel> (*)(BindContext<T> &);

/// Binders of the dense ops (BindDense.cpp) and of MoE/MTP/loss ops
/// (BindMoe.cpp); null when `op` is not theirs.
template <typename T> Binder<T> denseBinder(const std::string &op);
template <typename T> Binder<T> moeBinder(const std::string &op);

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_KERNELBINDING_H
