//===- Executor.cpp - Runs a plan's program on the CPU backend ------------===//
#include "exec/Executor.h"
#include "exec/ExpertParallel.h"
#include "plan/ComposedOps.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <set>

namespace dsflow::exec {

template <typename T>
io::Expected<BoundKernel> bindKernel(const Plan &plan, int32_t index,
                                     Memory &memory, ExpertParallel *ep,
                                     QuantizedParameters<T> &weights) {
  BindContext<T> context(plan, index, memory);
  context.expertParallel = ep;
  context.quantizedParameters = &weights;
  const std::string &op = plan.kernels(index).op();
  Binder<T> binder = denseBinder<T>(op);
  if (!binder)
    binder = moeBinder<T>(op);
  if (!binder)
    return io::makeError(context.where,
                         "the CPU backend has no kernel '" + op + "'");
  return binder(context);
}

io::Expected<std::unique_ptr<Executor>>
Executor::create(const Plan &plan, const std::string &source,
                 ExpertParallel *expertParallel,
                 const std::function<bool(int32_t)> &absent) {
  std::unique_ptr<Executor> e(new Executor(plan));
  e->source = source;
  e->expertParallel = expertParallel;
  const Plan &p = e->planCopy;
  bool hasF32 = false, hasF64 = false;
  for (int32_t i = 0; i < p.buffers_size(); ++i) {
    const Buffer &b = p.buffers(i);
    hasF32 |= b.dtype() == DTYPE_F32;
    hasF64 |= b.dtype() == DTYPE_F64;
    if (b.dtype() == DTYPE_BF16 || b.dtype() == DTYPE_FP8_E4M3)
      return io::makeError(
          source, "the CPU backend runs FP32 plans; '" + b.name() + "' is " +
                      (b.dtype() == DTYPE_BF16 ? "BF16" : "FP8") +
                      " (compile with --precision=fp32)");
    if (b.kind() == INPUT && b.name() == "tokens")
      e->tokenBuffer = i;
  }
  if (hasF32 && hasF64)
    return io::makeError(source, "the plan mixes FP32 and FP64 buffers");
  if (e->tokenBuffer < 0 || p.buffers(e->tokenBuffer).dtype() != DTYPE_I32)
    return io::makeError(source, "the plan has no int32 'tokens' input");
  e->useDouble = hasF64;
  // Only the routed experts this EP rank holds a slot of are allocated.
  auto left = std::make_shared<std::set<int32_t>>();
  if (expertParallel) {
    io::Expected<std::vector<ExpertTensorHolders>> experts =
        expertTensorHolders(p, expertParallel->group.size());
    if (!experts)
      return io::makeError(source, experts.error().message);
    int me = expertParallel->group.rank();
    for (const ExpertTensorHolders &t : *experts)
      if (std::find(t.ranks.begin(), t.ranks.end(), me) == t.ranks.end())
        left->insert(t.param);
  }
  if (left->empty() && !absent)
    e->mem = std::make_unique<Memory>(e->planCopy);
  else
    e->mem = std::make_unique<Memory>(e->planCopy, [left, absent](int32_t b) {
      return left->count(b) != 0 || (absent && absent(b));
    });
  if (io::Status error = e->bindPrograms())
    return *error;
  return e;
}

io::Status Executor::bindPrograms() {
  const Plan &p = planCopy;
  for (int i = 0; i < p.programs_size(); ++i) {
    std::vector<Step> steps;
    for (int32_t k : p.programs(i).kernels()) {
      io::Expected<BoundKernel> bound =
          useDouble
              ? bindKernel<double>(p, k, *mem, expertParallel, fp8WeightsF64)
              : bindKernel<float>(p, k, *mem, expertParallel, fp8WeightsF32);
      if (!bound)
        return io::makeError(source, bound.error().message);
      steps.push_back({k, std::move(*bound)});
    }
    if (p.programs(i).role() == "eval")
      evalProgram = i;
    programs.push_back(std::move(steps));
  }
  return std::nullopt;
}

io::Expected<std::unique_ptr<Executor>> Executor::sharingParameters() const {
  std::unique_ptr<Executor> e(new Executor(planCopy));
  e->source = source;
  e->expertParallel = expertParallel;
  e->tokenBuffer = tokenBuffer;
  e->useDouble = useDouble;
  e->mem = Memory::sharingParameters(*mem);
  if (io::Status error = e->bindPrograms())
    return *error;
  if (offload) {
    if (!moreDevices || offload->resident())
      return io::makeError(source, offload->device().name() +
                                       " runs one micro-batch at a time "
                                       "(with the training state resident "
                                       "or without a way to make another)");
    io::Expected<std::unique_ptr<Device>> device = moreDevices(e->planCopy);
    if (!device)
      return device.error();
    if (io::Status error = e->offloadTo(std::move(*device), false, moreDevices))
      return *error;
  }
  return e;
}

io::Status Executor::offloadTo(std::unique_ptr<Device> device, bool resident,
                               DeviceFactory more) {
  if (expertParallel && resident)
    return io::makeError(source, "the routed experts run over several ranks "
                                 "(expert parallelism): the training state "
                                 "stays on the host");
  if (resident && !device->optimizer())
    return io::makeError(source,
                         device->name() + " cannot keep the training state");
  offload = std::make_unique<Offload>(planCopy, *mem, std::move(device));
  // Under expert parallelism the routed experts' kernels exchange rows with
  // the other ranks through the host (ExpertParallel.h).
  if (expertParallel)
    for (int32_t k = 0; k < planCopy.kernels_size(); ++k)
      if (routedRowCounts(planCopy.kernels(k)) >= 0)
        offload->keepOnHost(k);
  moreDevices = std::move(more);
  offload->timer().setTiming(profiling);
  if (resident)
    offload->setResident();
  return std::nullopt;
}

void Executor::setProfiling(bool on) {
  profiling = on;
  if (offload)
    offload->timer().setTiming(on);
}

io::Status Executor::parametersToHost() {
  if (!offload)
    return std::nullopt;
  if (io::Status e = offload->bringToHost(PARAMETER))
    return e;
  return offload->bringToHost(GRADIENT);
}

void Executor::parametersWrittenOnHost() {
  if (!offload)
    return;
  for (int32_t b = 0; b < planCopy.buffers_size(); ++b)
    if (planCopy.buffers(b).kind() == PARAMETER)
      offload->hostWrote(b);
}

io::Status Executor::zeroGradients() {
  if (offload)
    return offload->zeroGradients();
  mem->zeroGradients();
  return std::nullopt;
}

io::Status Executor::runOnHost(Step &step) {
  const Kernel &kernel = planCopy.kernels(step.kernel);
  if (offload)
    if (io::Status e = offload->beforeHost(step.kernel))
      return e;
  // Backward kernels add into their outputs: every non-accumulating kernel
  // starts from zeros (forward kernels overwrite them anyway).
  for (int32_t b : kernel.outputs())
    if (!kernel.accumulates() && mem->present(b))
      std::memset(mem->data(b), 0,
                  static_cast<size_t>(planCopy.buffers(b).bytes()));
  cpu::Status status = step.run();
  if (status == cpu::Status::CommunicationFailed && expertParallel &&
      expertParallel->error)
    return expertParallel->error;
  if (status != cpu::Status::Ok)
    return io::makeError(source, "kernel " + std::to_string(step.kernel) +
                                     " (" + kernel.op() +
                                     "): " + cpu::toString(status));
  if (offload)
    offload->afterHost(step.kernel);
  return std::nullopt;
}

io::Status Executor::runStep(Step &step) {
  const Kernel &kernel = planCopy.kernels(step.kernel);
  for (int32_t b : kernel.outputs())
    mem->touch(b);
  for (int32_t b : kernel.inputs())
    mem->touch(b);
  auto start = std::chrono::steady_clock::now();
  auto wallStart = std::chrono::system_clock::now();
  // A device queues its launches: their times here are the host's.
  io::Status status = offload && offload->onDevice(step.kernel)
                          ? offload->runOnDevice(step.kernel)
                          : runOnHost(step);
  if (status)
    return status;
  if (offload)
    if (io::Status e = offload->afterKernel(step.kernel))
      return e;
  if (trace) {
    auto micros = [](auto d) {
      return std::chrono::duration<double, std::micro>(d).count();
    };
    trace->push_back({step.kernel, kernel.op(),
                      micros(wallStart.time_since_epoch()),
                      micros(std::chrono::steady_clock::now() - start)});
  }
  // A device's kernels are timed there (runProgram collects them).
  if (profiling && !(offload && offload->onDevice(step.kernel))) {
    auto &[seconds, calls] = profile[kernel.op()];
    seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    ++calls;
  }
  return std::nullopt;
}

io::Status Executor::runProgram(int program, const std::vector<char> *selected,
                                const KernelHook *hook) {
  if (io::Status s = startPart(program, selected, hook ? *hook : nullptr))
    return s;
  for (;;) {
    io::Expected<bool> launchedAll = launchKernels();
    if (!launchedAll)
      return launchedAll.error();
    if (*launchedAll)
      return finishProgram();
  }
}

io::Status Executor::startPart(int program, const std::vector<char> *selected,
                               const KernelHook &hook) {
  part = Part{program, selected, hook, 0};
  fp8WeightsF32.startRun();
  fp8WeightsF64.startRun();
  if (offload)
    return offload->beginProgram(program, selected != nullptr);
  return std::nullopt;
}

io::Expected<bool> Executor::launchKernels() {
  std::vector<Step> &steps = programs[part.program];
  bool first = true;
  for (; part.next < steps.size(); ++part.next) {
    Step &step = steps[part.next];
    if (part.selected && !(*part.selected)[step.kernel])
      continue;
    if (!first && offload && offload->hostWaitsBefore(step.kernel))
      return false;
    first = false;
    if (part.hook)
      if (io::Status s = part.hook(step.kernel, false))
        return *s;
    if (io::Status s = runStep(step))
      return *s;
    if (part.hook)
      if (io::Status s = part.hook(step.kernel, true))
        return *s;
  }
  return true;
}

io::Status Executor::finishProgram() {
  if (!offload)
    return std::nullopt;
  if (io::Status e = offload->endProgram())
    return e;
  if (profiling) {
    auto times = offload->timer().takeKernelTimes();
    if (!times)
      return times.error();
    for (auto [k, seconds] : *times) {
      auto &[total, calls] = profile[planCopy.kernels(k).op()];
      total += seconds;
      ++calls;
    }
  }
  return std::nullopt;
}

void Executor::printProfile(std::FILE *out) const {
  std::vector<std::pair<double, std::string>> rows;
  double total = 0;
  for (const auto &[op, stats] : profile) {
    rows.push_back({stats.first, op});
    total += stats.first;
  }
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(out, "%-22s %10s %8s %10s\n", "op", "seconds", "share", "calls");
  for (const auto &[seconds, op] : rows)
    std::fprintf(out, "%-22s %10.3f %7.1f%% %10lld\n", op.c_str(), seconds,
                 100.0 * seconds / std::max(total, 1e-12),
                 (long long)profile.at(op).second);
}

int Executor::expertParallelRanks() const {
  return expertParallel ? expertParallel->group.size() : 1;
}

double Executor::loss(int i) const {
  const std::byte *data = mem->data(planCopy.losses(i));
  return useDouble ? *reinterpret_cast<const double *>(data)
                   : *reinterpret_cast<const float *>(data);
}

} // namespace dsflow::exec
