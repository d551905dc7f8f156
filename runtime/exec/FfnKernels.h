//===- FfnKernels.h - A plan's FFN kernels through FfnSteps.h ---*- C++ -*-===//
//
// expert_ffn and shared_experts (forward, gradient, weight gradient) as the
// CPU binders read their operands (BindMoe.cpp), run through the FFN steps
// every backend shares (runtime/backends/cpu/FfnSteps.h) on any engine: the
// CUDA backend's (runtime/backends/cuda/DeviceFfn.cpp), and a host one in the
// tests, which compare it with the CPU backend's kernels. The binders have
// checked the sizes by the time this runs.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_FFNKERNELS_H
#define DSFLOW_RUNTIME_EXEC_FFNKERNELS_H

#include "io/Status.h"
#include "plan/ComposedOps.h"
#include "plan/PlanFile.h"
#include "runtime/backends/cpu/FfnSteps.h"

#include <vector>

namespace dsflow::exec {

/// The saved gate pre-activations [rows, inter] of an FFN kernel: the
/// forward's second output, the gradients' second-to-last input.
inline const Buffer &ffnSavedGate(const Plan &plan, const Kernel &k) {
  bool forward = k.op() == "expert_ffn" || k.op() == "shared_experts";
  return plan.buffers(forward ? k.outputs(1) : k.inputs(k.inputs_size() - 2));
}

/// Runs FFN kernel `k`: `newEngine()` makes an engine per expert block (its
/// scratch lives as long as it does; `error()` says how it went),
/// `arrayOf(buffer)` is a buffer's array, `counts(buffer, rows)` the routed
/// experts' row counts (io::Expected<std::vector<int32_t>>, checked to add up
/// to `rows`).
template <typename Array, typename NewEngine, typename ArrayOf, typename Counts>
io::Status runFfnKernel(const Plan &plan, const Kernel &k, NewEngine newEngine,
                        ArrayOf arrayOf, Counts counts) {
  using Engine = decltype(newEngine());
  const std::string &op = k.op();
  auto in = [&](int i) { return arrayOf(k.inputs(i)); };
  auto out = [&](int i) { return arrayOf(k.outputs(i)); };
  // Per block of rows with rows: the engine, its first row, rows, expert.
  auto perExpert = [&](const std::vector<int32_t> &rowCounts,
                       auto step) -> io::Status {
    int64_t first = 0;
    for (size_t e = 0; e < rowCounts.size(); ++e) {
      if (rowCounts[e] > 0) {
        Engine engine = newEngine();
        step(engine, first, int64_t(rowCounts[e]), int64_t(e));
        if (io::Status s = engine.error())
          return s;
      }
      first += rowCounts[e];
    }
    return std::nullopt;
  };
  using cpu::ffnBackwardBWith, cpu::ffnBackwardWWith, cpu::ffnForwardWith;
  using E = Engine;
  using A = Array;
  // The rows' last dimension is the hidden size, the gate's first the
  // intermediate one.
  bool forward = op == "expert_ffn" || op == "shared_experts";
  int rowsAt = forward ? 0 : 1;
  const Buffer &rows = plan.buffers(k.inputs(rowsAt));
  int64_t hidden = rows.shape(rows.shape_size() - 1);
  int64_t numRows = hidden ? numElements(rows) / hidden : 0;
  if (op.rfind("shared_experts", 0) == 0) {
    // [x, gate, up, down] or [dy, x, gate, up, down, saved gate, saved up].
    int w = rowsAt + 1;
    int64_t inter = plan.buffers(k.inputs(w)).shape(0);
    return perExpert({int32_t(numRows)}, [&](E &e, int64_t, int64_t n,
                                             int64_t) {
      if (op == "shared_experts")
        ffnForwardWith<E, A, A>(e, in(0), in(1), in(2), in(3), out(0), out(1),
                                out(2), n, hidden, inter);
      else if (op == "shared_experts_grad")
        ffnBackwardBWith<E, A, A>(e, in(0), in(w), in(w + 1), in(w + 2), in(5),
                                  in(6), out(0), A(), false, n, hidden, inter);
      else
        ffnBackwardWWith<E, A, A>(e, in(0), in(1), in(w + 2), in(5), in(6),
                                  out(0), out(1), out(2), n, hidden, inter);
    });
  }
  // [rows, counts, E gates, E ups, E downs] or [dy, rows, counts, ..., saved
  // gate, saved up].
  int32_t countsBuffer = routedRowCounts(k);
  int weightsAt = rowsAt + 2;
  int experts = int(numElements(plan.buffers(countsBuffer)));
  int64_t inter = plan.buffers(k.inputs(weightsAt)).shape(0);
  io::Expected<std::vector<int32_t>> rowCounts = counts(countsBuffer, numRows);
  if (!rowCounts)
    return rowCounts.error();
  auto gate = [&](int64_t e) { return in(weightsAt + int(e)); };
  auto up = [&](int64_t e) { return in(weightsAt + experts + int(e)); };
  auto down = [&](int64_t e) { return in(weightsAt + 2 * experts + int(e)); };
  int saved = k.inputs_size() - 2;
  return perExpert(*rowCounts, [&](E &e, int64_t first, int64_t n, int64_t x) {
    A savedG = in(saved) + first * inter,
      savedU = in(saved + 1) + first * inter;
    if (op == "expert_ffn")
      ffnForwardWith<E, A, A>(e, in(0) + first * hidden, gate(x), up(x),
                              down(x), out(0) + first * hidden,
                              out(1) + first * inter, out(2) + first * inter, n,
                              hidden, inter);
    else if (op == "expert_ffn_grad")
      ffnBackwardBWith<E, A, A>(
          e, in(0) + first * hidden, gate(x), up(x), down(x), savedG, savedU,
          out(0) + first * hidden, out(1) + first, true, n, hidden, inter);
    else
      ffnBackwardWWith<E, A, A>(e, in(0) + first * hidden,
                                in(1) + first * hidden, down(x), savedG, savedU,
                                out(int(x)), out(experts + int(x)),
                                out(2 * experts + int(x)), n, hidden, inter);
  });
}

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_FFNKERNELS_H
