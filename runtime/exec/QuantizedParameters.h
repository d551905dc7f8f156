//===- QuantizedParameters.h - One FP8 copy of each weight --*- C++ -*-===//
//
// FP8 kernels read their weights quantized to E4M3 and back (Fp8Emulation.h),
// and several kernels read the same weight in one program run: a linear
// layer's forward and activation gradient, a fused FFN's forward, gradient and
// weight gradient. They share one copy per executor, made by the first of
// them that runs in each run. Kernels never write parameters (the plan's
// checks refuse such a plan), so the copy stays exact for the rest of the run;
// the next run (after the optimizer, a resume, or any other write from the
// host) makes it again. The copies are bit for bit those each kernel would
// make for itself.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_QUANTIZEDPARAMETERS_H
#define DSFLOW_RUNTIME_EXEC_QUANTIZEDPARAMETERS_H

#include "exec/Fp8Emulation.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

namespace dsflow::exec {

template <typename T> class QuantizedParameters {
public:
  /// What a kernel reading a weight binds: the copy it reads, and the step
  /// that brings the copy up to date, to run before the kernel.
  struct Use {
    const T *copy;
    std::function<void()> refresh;
  };
  /// The copy of parameter buffer `buffer` (at `source`, viewed as
  /// [rows, cols]) in `role`'s tiling. The object must outlive the steps.
  Use use(int32_t buffer, const T *source, int64_t rows, int64_t cols,
          Fp8Role role, bool ue8m0);
  /// A program run (or a part of one) begins: every copy is stale.
  void startRun() { ++run; }
  /// The bytes the copies hold.
  int64_t bytes() const;

private:
  struct Copy {
    std::vector<T> values;
    /// The run the values were made in (0: none yet).
    uint64_t madeInRun = 0;
  };
  std::map<std::tuple<int32_t, Fp8Role, bool>, std::unique_ptr<Copy>> copies;
  uint64_t run = 1;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_QUANTIZEDPARAMETERS_H
