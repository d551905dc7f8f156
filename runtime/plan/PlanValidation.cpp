//===- PlanValidation.cpp - Structural checks of a decoded plan -----------===//
//
// A plan is untrusted input: everything the executor indexes or sizes by is
// checked here, so that the executor can trust indices and byte ranges.
// Whether a kernel's operands fit its op is checked by the backend when it
// binds the kernel.
//
//===----------------------------------------------------------------------===//
#include "plan/PlanFile.h"

#include <algorithm>
#include <iterator>

namespace dsflow {

int64_t dtypeBytes(DType dtype) {
  switch (dtype) {
  case DTYPE_F32:
  case DTYPE_I32:
    return 4;
  case DTYPE_F64:
    return 8;
  case DTYPE_BF16:
    return 2;
  case DTYPE_FP8_E4M3:
    return 1;
  default:
    return 0;
  }
}

int64_t storageBytes(DType dtype, const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  int64_t bytes = n * dtypeBytes(dtype);
  if (dtype == DTYPE_FP8_E4M3 && !shape.empty() && shape.back() > 0) {
    int64_t rows = n / shape.back();
    bytes += rows * ((shape.back() + 127) / 128) * 4;
  }
  return bytes;
}

int64_t numElements(const Buffer &buffer) {
  int64_t n = 1;
  for (int64_t d : buffer.shape())
    n *= d;
  return n;
}

namespace {

int64_t regionBytes(const MemoryPlan &memory, BufferKind kind) {
  switch (kind) {
  case PARAMETER:
    return memory.parameter_bytes();
  case GRADIENT:
    return memory.gradient_bytes();
  case INPUT:
    return memory.input_bytes();
  case ACTIVATION:
    return memory.activation_bytes();
  default:
    return -1;
  }
}

/// Formats "buffer 12 ('name')" for messages.
std::string describe(const Plan &plan, int index) {
  return "buffer " + std::to_string(index) + " ('" +
         plan.buffers(index).name() + "')";
}

std::optional<std::string> checkBuffer(const Plan &plan, int index) {
  const Buffer &b = plan.buffers(index);
  if (dtypeBytes(b.dtype()) == 0)
    return describe(plan, index) + " has no element type";
  constexpr int64_t kMaxElements = int64_t(1) << 48;
  int64_t n = 1;
  for (int64_t d : b.shape()) {
    if (d <= 0 || n > kMaxElements / d)
      return describe(plan, index) + " has an invalid shape";
    n *= d;
  }
  int64_t needed = storageBytes(
      b.dtype(), std::vector<int64_t>(b.shape().begin(), b.shape().end()));
  if (b.bytes() != needed)
    return describe(plan, index) + " is " + std::to_string(b.bytes()) +
           " bytes, its shape needs " + std::to_string(needed);
  int64_t region = regionBytes(plan.memory(), b.kind());
  if (region < 0)
    return describe(plan, index) + " has no kind";
  if (b.offset() < 0 || b.offset() > region - b.bytes())
    return describe(plan, index) + " lies outside its region (offset " +
           std::to_string(b.offset()) + ", " + std::to_string(b.bytes()) +
           " bytes, region " + std::to_string(region) + ")";
  if (b.kind() == GRADIENT &&
      (b.gradient_of() < 0 || b.gradient_of() >= plan.buffers_size() ||
       plan.buffers(b.gradient_of()).kind() != PARAMETER))
    return describe(plan, index) + " is the gradient of no parameter";
  return std::nullopt;
}

std::optional<std::string> checkKernel(const Plan &plan, int index) {
  const Kernel &k = plan.kernels(index);
  auto inRange = [&](int32_t buffer) {
    return buffer >= 0 && buffer < plan.buffers_size();
  };
  for (int32_t b : k.inputs())
    if (!inRange(b))
      return "kernel " + std::to_string(index) + " (" + k.op() +
             ") reads buffer " + std::to_string(b) + ", which does not exist";
  for (int32_t b : k.outputs())
    if (!inRange(b) || plan.buffers(b).kind() == PARAMETER ||
        plan.buffers(b).kind() == INPUT)
      return "kernel " + std::to_string(index) + " (" + k.op() +
             ") writes buffer " + std::to_string(b) +
             ", which does not exist or is read-only";
  return std::nullopt;
}

/// The pipeline record: known schedule, stages in order covering every
/// decoder layer once, embedding first and head last.
std::optional<std::string> checkPipeline(const Plan &plan) {
  if (!plan.has_pipeline())
    return std::nullopt;
  const PipelinePlan &p = plan.pipeline();
  static const char *const schedules[] = {"1f1b", "zb1p", "dualpipe",
                                          "dualpipev"};
  if (std::find(std::begin(schedules), std::end(schedules), p.schedule()) ==
      std::end(schedules))
    return "pipeline schedule '" + p.schedule() + "' is unknown";
  int64_t next = 0;
  for (int i = 0; i < p.stages_size(); ++i) {
    const PipelineStage &s = p.stages(i);
    if (s.first_layer() != next || s.end_layer() <= s.first_layer())
      return "pipeline stage " + std::to_string(i) + " holds layers [" +
             std::to_string(s.first_layer()) + ", " +
             std::to_string(s.end_layer()) + "), not a non-empty run from " +
             std::to_string(next);
    next = s.end_layer();
  }
  if (p.stages_size() == 0 || next != plan.model().num_layers() ||
      !p.stages(0).embedding() || !p.stages(p.stages_size() - 1).head())
    return "pipeline stages do not cover the model's layers with the "
           "embedding first and the head last";
  return std::nullopt;
}

/// The CUDA module's launches, and the kernels' references to them.
std::optional<std::string> checkCuda(const Plan &plan) {
  const CudaModule &cuda = plan.cuda();
  for (int i = 0; i < cuda.launches_size(); ++i) {
    const CudaLaunch &l = cuda.launches(i);
    if (l.function().empty() || l.grid() < 1 || l.block() < 1 ||
        l.block() > 1024 || l.shared_bytes() < 0)
      return "CUDA launch " + std::to_string(i) + " ('" + l.function() +
             "') has no function or an invalid shape";
    // A later launch, so that a kernel's chain ends.
    if (l.then() != 0 && (l.then() <= i + 1 || l.then() > cuda.launches_size()))
      return "CUDA launch " + std::to_string(i) + " ('" + l.function() +
             "') continues with launch " + std::to_string(l.then() - 1) +
             ", which is not a later one";
  }
  if (cuda.launches_size() > 0 && cuda.cubin().empty())
    return "the CUDA module has launches but no machine code";
  for (int k = 0; k < plan.kernels_size(); ++k) {
    int32_t launch = plan.kernels(k).cuda_launch();
    if (launch < 0 || launch > cuda.launches_size())
      return "kernel " + std::to_string(k) + " ('" + plan.kernels(k).op() +
             "') names CUDA launch " + std::to_string(launch - 1) +
             ", which does not exist";
  }
  return std::nullopt;
}

} // namespace

io::Status validatePlan(const Plan &plan, const std::string &source) {
  if (plan.format() != kPlanFormatId)
    return io::makeError(source, "format id '" + plan.format() + "' is not '" +
                                     kPlanFormatId + "'");
  const TrainingConfig &t = plan.training();
  if (t.seq_len() <= 0 || t.micro_batch() <= 0 || t.micro_batches() <= 0)
    return io::makeError(source, "training shape (sequence, micro-batch, "
                                 "micro-batches) must be positive");
  for (int i = 0; i < plan.buffers_size(); ++i)
    if (std::optional<std::string> problem = checkBuffer(plan, i))
      return io::makeError(source, *problem);
  for (int i = 0; i < plan.kernels_size(); ++i)
    if (std::optional<std::string> problem = checkKernel(plan, i))
      return io::makeError(source, *problem);
  if (plan.programs_size() == 0)
    return io::makeError(source, "the plan has no program");
  for (const Program &program : plan.programs())
    for (int32_t k : program.kernels())
      if (k < 0 || k >= plan.kernels_size())
        return io::makeError(source, "program '" + program.role() +
                                         "' runs kernel " + std::to_string(k) +
                                         ", which does not exist");
  if (std::optional<std::string> problem = checkPipeline(plan))
    return io::makeError(source, *problem);
  if (std::optional<std::string> problem = checkCuda(plan))
    return io::makeError(source, *problem);
  if (plan.losses_size() == 0)
    return io::makeError(source, "the plan names no loss");
  for (int32_t b : plan.losses())
    if (b < 0 || b >= plan.buffers_size() || numElements(plan.buffers(b)) != 1)
      return io::makeError(source, "loss buffer " + std::to_string(b) +
                                       " is not a scalar buffer");
  return std::nullopt;
}

} // namespace dsflow
