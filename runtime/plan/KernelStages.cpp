//===- KernelStages.cpp - The plan's kernels on pipeline stages -----------===//
#include "plan/KernelStages.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

namespace dsflow {

std::optional<int64_t> modelLayerOf(const std::string &name) {
  static const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  const char *digits = name.c_str() + prefix.size();
  char *end = nullptr;
  long long layer = std::strtoll(digits, &end, 10);
  if (end == digits || *end != '.' || layer < 0)
    return std::nullopt;
  return layer;
}

} // namespace dsflow

namespace dsflow::stages {

int stageOfTensor(const PipelinePlan &pipeline, const std::string &name) {
  int last = pipeline.stages_size() - 1;
  if (std::optional<int64_t> layer = modelLayerOf(name)) {
    for (int s = 0; s < pipeline.stages_size(); ++s)
      if (*layer >= pipeline.stages(s).first_layer() &&
          *layer < pipeline.stages(s).end_layer())
        return s;
    return last; // An MTP module.
  }
  return name.find("embed_tokens") != std::string::npos ? 0 : last;
}

namespace {
const Attribute *findAttribute(const Kernel &k, const char *name) {
  for (const Attribute &a : k.attributes())
    if (a.name() == name)
      return &a;
  return nullptr;
}
} // namespace

io::Expected<KernelStages> assignKernelStages(const Plan &plan) {
  if (!plan.has_pipeline() || plan.programs_size() == 0)
    return io::makeError("plan", "has no pipeline stages");
  const PipelinePlan &pipeline = plan.pipeline();
  const int last = pipeline.stages_size() - 1;
  KernelStages out;
  out.stageOfKernel.assign(plan.kernels_size(), -1);
  std::map<int32_t, int> producer;     // buffer -> kernel writing it (latest)
  std::map<int64_t, int> forwardStage; // graph.fwd_id -> stage
  std::set<int32_t> shared;
  auto paramStage = [&](int32_t b) {
    const Buffer &buffer = plan.buffers(b);
    int32_t param = buffer.kind() == GRADIENT ? buffer.gradient_of() : b;
    return stageOfTensor(pipeline, plan.buffers(param).name());
  };
  for (int32_t k : plan.programs(0).kernels()) {
    const Kernel &kernel = plan.kernels(k);
    int stage = 0;
    const Attribute *gradOf = findAttribute(kernel, "graph.grad_of");
    // A recomputed forward op runs like one: with the tensors it recomputes.
    if (!kernel.backward() || kernel.recomputed()) {
      for (int32_t b : kernel.inputs()) {
        BufferKind kind = plan.buffers(b).kind();
        if (kind == PARAMETER)
          stage = std::max(stage, paramStage(b));
        else if (producer.count(b))
          stage = std::max(stage, out.stageOfKernel[producer[b]]);
      }
      const Attribute *id = findAttribute(kernel, "graph.fwd_id");
      if (id && !kernel.recomputed())
        forwardStage[id->i64()] = stage;
    } else if (gradOf && forwardStage.count(gradOf->i64())) {
      stage = forwardStage[gradOf->i64()];
    } else if (kernel.inputs_size() == 0) {
      stage = last; // The loss's seed gradient.
    } else {
      stage = last;
      for (int32_t b : kernel.inputs())
        if (producer.count(b))
          stage = std::min(stage, out.stageOfKernel[producer[b]]);
    }
    out.stageOfKernel[k] = stage;
    // Inputs from other stages, and their direction.
    for (int32_t b : kernel.inputs()) {
      const Buffer &buffer = plan.buffers(b);
      if (buffer.kind() == PARAMETER) {
        if (paramStage(b) != stage)
          shared.insert(b);
        continue;
      }
      auto p = producer.find(b);
      if (p == producer.end())
        continue;
      int from = out.stageOfKernel[p->second];
      if (from == stage)
        continue;
      const Kernel &writer = plan.kernels(p->second);
      bool gradient = writer.backward() && !writer.recomputed();
      // Activations flow forward; gradients flow back; a backward kernel may
      // read a forward tensor of a later stage only through a crossing too.
      if (!gradient && from > stage && !kernel.backward())
        return io::makeError("plan", "kernel " + std::to_string(k) + " (" +
                                         kernel.op() + ") on stage " +
                                         std::to_string(stage) +
                                         " reads an activation of stage " +
                                         std::to_string(from));
      if (gradient && from < stage)
        return io::makeError(
            "plan", "kernel " + std::to_string(k) + " (" + kernel.op() +
                        ") on stage " + std::to_string(stage) +
                        " reads a gradient of stage " + std::to_string(from));
      out.crossings.push_back({b, from, stage, gradient});
    }
    for (int32_t b : kernel.outputs()) {
      if (plan.buffers(b).kind() == GRADIENT && paramStage(b) != stage)
        shared.insert(plan.buffers(b).gradient_of());
      producer[b] = k;
    }
  }
  out.sharedParameters.assign(shared.begin(), shared.end());
  return out;
}

std::vector<char> weightGradientPart(const Plan &plan) {
  std::vector<char> part(plan.kernels_size(), 0);
  std::vector<char> fromW(plan.buffers_size(), 0);
  for (int k = 0; k < plan.kernels_size(); ++k) {
    const Kernel &kernel = plan.kernels(k);
    bool readsW = std::any_of(kernel.inputs().begin(), kernel.inputs().end(),
                              [&](int32_t b) { return fromW[b] != 0; });
    if (!kernel.weight_gradient() && !readsW)
      continue;
    part[k] = 1;
    // A gradient buffer a W kernel adds into is not "from W" for its other
    // writers: only activations carry the dependency on.
    for (int32_t b : kernel.outputs())
      if (plan.buffers(b).kind() == ACTIVATION)
        fromW[b] = 1;
  }
  return part;
}

} // namespace dsflow::stages
