//===- Executor.h - Runs a plan's program on the CPU backend ----*- C++ -*-===//
//
// Owns the plan's memory and its bound kernels. One call of runMicroBatch()
// executes the program once: forward, backward, and the accumulation of every
// parameter gradient into its GRADIENT buffer. The optimizer (train/) reads
// parameters and gradients through the accessors.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_EXECUTOR_H
#define DSFLOW_RUNTIME_EXEC_EXECUTOR_H

#include "exec/KernelBinding.h"
#include "exec/KernelTrace.h"
#include "exec/Memory.h"
#include "exec/Offload.h"

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <vector>

namespace dsflow::exec {

class Executor {
public:
  /// Binds every kernel of the plan's programs. Plans whose float buffers
  /// are not all F32 (or all F64) are refused: the CPU backend computes in one
  /// precision. With `expertParallel` (which must outlive the executor) the
  /// routed experts run on the ranks of that EP group (ExpertParallel.h).
  /// `absent(parameter buffer)`: parameters this rank does not allocate
  /// (another pipeline stage's); the routed experts of other EP ranks are
  /// left out too.
  static io::Expected<std::unique_ptr<Executor>>
  create(const Plan &plan, const std::string &source,
         ExpertParallel *expertParallel = nullptr,
         const std::function<bool(int32_t)> &absent = nullptr);
  /// Another executor of the same plan with its own inputs and activations
  /// but `this` one's parameters and gradients (which must outlive it): a
  /// pipeline stage's micro-batch in flight.
  io::Expected<std::unique_ptr<Executor>> sharingParameters() const;

  /// Executes the "train" program once on the tokens in the input buffer.
  io::Status runMicroBatch() { return runProgram(0); }
  /// Executes the forward-only "eval" program (the train one if there is none).
  io::Status runForward() { return runProgram(evalProgram); }
  /// Called before (after = false) and after each kernel runKernels runs.
  using KernelHook = std::function<io::Status(int32_t kernel, bool after)>;
  /// Executes the train program's kernels k with selected[k] (a pipeline
  /// stage's forward or backward part), in program order, with `hook` around
  /// each (the stage's messages).
  io::Status runKernels(const std::vector<char> &selected,
                        const KernelHook &hook) {
    return runProgram(0, &selected, hook ? &hook : nullptr);
  }
  /// runKernels in steps, for DualPipe's paired chunks: startKernels begins
  /// the part; each launchKernels launches its kernels up to the next one
  /// before which the host would wait for the device
  /// (Offload::hostWaitsBefore) and says whether it launched the last;
  /// finishKernels ends the part (copies back, kernel times). Between the
  /// calls the host launches the other chunk's kernels, so that the device
  /// has those to run while the host waits. `selected` and what `hook`
  /// refers to must live until finishKernels.
  io::Status startKernels(const std::vector<char> &selected,
                          const KernelHook &hook) {
    return startPart(0, &selected, hook);
  }
  io::Expected<bool> launchKernels();
  io::Status finishKernels() { return finishProgram(); }

  /// Accumulates wall time per op when on; report() prints the table.
  /// With a device, its kernels are timed on the device.
  void setProfiling(bool on);
  /// Records every kernel run into `events` while set (null: off).
  void setTrace(std::vector<KernelEvent> *events) { trace = events; }
  void printProfile(std::FILE *out) const;

  /// Makes a device like the first for another executor of the plan.
  using DeviceFactory =
      std::function<io::Expected<std::unique_ptr<Device>>(const Plan &)>;
  /// From now on runs the kernels `device` has code for there, the others
  /// on the host (exec/Offload.h). Refused with expert parallelism.
  /// `resident` keeps the training state on the device (its optimizer runs
  /// the updates); refused when the device has no optimizer. `more` makes
  /// the devices of the executors sharingParameters makes (a pipeline
  /// stage's micro-batches in flight; not resident); without it they are
  /// refused.
  io::Status offloadTo(std::unique_ptr<Device> device, bool resident = false,
                       DeviceFactory more = nullptr);
  /// Before the host reads buffer `b` outside a kernel (a pipeline stage's
  /// message): brings the device's newer bytes.
  io::Status bufferToHost(int32_t b) {
    return offload ? offload->bringToHost(b) : std::nullopt;
  }
  /// Starts copying buffer `b` as the kernels run so far leave it to `to`
  /// (a pipeline stage's message), without waiting for a device; `to`
  /// holds the bytes after finishCopiesOut.
  io::Status startCopyOut(int32_t b, std::byte *to) {
    if (offload)
      return offload->startCopyOut(b, to);
    std::memcpy(to, mem->data(b), size_t(planCopy.buffers(b).bytes()));
    return std::nullopt;
  }
  io::Status finishCopiesOut() {
    return offload ? offload->finishCopiesOut() : std::nullopt;
  }
  /// After the host wrote buffer `b` outside a kernel (a received message).
  void bufferWrittenOnHost(int32_t b) {
    if (offload)
      offload->hostWrote(b);
  }
  /// The offload in use, or null.
  const Offload *offloading() const { return offload.get(); }
  /// The device's optimizer when the training state lives there (resident
  /// offload), else null: the host's AdamW updates the host's memory.
  DeviceOptimizer *deviceOptimizer() const {
    return offload ? offload->optimizer() : nullptr;
  }
  /// Data parallelism on a device keeping the training state: the next
  /// program (a step's last micro-batch) starts summing each gradient bucket
  /// of about `bucketBytes` over the ranks as soon as the backward is done
  /// with it (exec/Offload.h). Nothing without such a device.
  void overlapGradientReduction(int64_t bucketBytes) {
    if (offload)
      offload->overlapReductionWithNextProgram(bucketBytes);
  }
  /// Before the host reads parameters or gradients (checkpoints, dumps):
  /// brings what the device holds newer.
  io::Status parametersToHost();
  /// After the host wrote every parameter (initialization, resume).
  void parametersWrittenOnHost();
  io::Status zeroGradients();

  const Plan &plan() const { return planCopy; }
  Memory &memory() { return *mem; }
  bool isDouble() const { return useDouble; }
  /// The ranks the routed experts are spread over (1 without EP).
  int expertParallelRanks() const;

  /// The token input [micro_batch, seq_len + mtp_depth + 1].
  int32_t *tokens() {
    return reinterpret_cast<int32_t *>(mem->data(tokenBuffer));
  }
  int64_t tokenCount() const {
    return numElements(planCopy.buffers(tokenBuffer));
  }

  /// The value of loss `i` (total, LM, MTP) after the last micro-batch.
  double loss(int i) const;

  /// The measured peak of the activation arena (bytes touched).
  int64_t activationHighWater() const { return mem->activationHighWater(); }
  /// The bytes of the FP8 weight copies (QuantizedParameters.h).
  int64_t fp8WeightCopyBytes() const {
    return fp8WeightsF32.bytes() + fp8WeightsF64.bytes();
  }

private:
  struct Step {
    int32_t kernel;
    BoundKernel run;
  };
  /// The part of a program being run: its kernels k with selected[k] (all
  /// without `selected`), the hook around each, the next step.
  struct Part {
    int program = 0;
    const std::vector<char> *selected = nullptr;
    KernelHook hook;
    size_t next = 0;
  };
  Executor(const Plan &plan) : planCopy(plan) {}
  io::Status runProgram(int program,
                        const std::vector<char> *selected = nullptr,
                        const KernelHook *hook = nullptr);
  io::Status startPart(int program, const std::vector<char> *selected,
                       const KernelHook &hook);
  /// The end of a program with a device: what the host needs back, the
  /// device's kernel times.
  io::Status finishProgram();
  /// Binds every program's kernels to the memory.
  io::Status bindPrograms();
  /// Runs one kernel on the host (zeroing its outputs unless it accumulates).
  io::Status runOnHost(Step &step);
  /// Runs one kernel where it has code (with an offload) and records it.
  io::Status runStep(Step &step);

  Plan planCopy;
  std::unique_ptr<Memory> mem;
  /// The FP8 weight copies the bound kernels share (one type is used).
  QuantizedParameters<float> fp8WeightsF32;
  QuantizedParameters<double> fp8WeightsF64;
  /// Per program, its bound kernels in order.
  std::vector<std::vector<Step>> programs;
  Part part;
  int evalProgram = 0;
  bool profiling = false;
  std::vector<KernelEvent> *trace = nullptr;
  std::map<std::string, std::pair<double, int64_t>> profile;
  int32_t tokenBuffer = -1;
  bool useDouble = false;
  std::string source;
  ExpertParallel *expertParallel = nullptr;
  std::unique_ptr<Offload> offload;
  DeviceFactory moreDevices;
};

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_EXECUTOR_H
