//===- StepDump.cpp - One training step's internals, for checking ---------===//
#include "train/StepDump.h"

#include "plan/PlanFile.h"

namespace dsflow::train {
namespace {

io::Shape shapeOf(const Buffer &b) {
  return io::Shape(b.shape().begin(), b.shape().end());
}

template <typename T> std::deque<std::vector<T>> &storeOf(
    std::deque<std::vector<float>> &f, std::deque<std::vector<int32_t>> &i,
    std::deque<std::vector<int64_t>> &l, std::deque<std::vector<double>> &d) {
  if constexpr (std::is_same_v<T, float>)
    return f;
  else if constexpr (std::is_same_v<T, int32_t>)
    return i;
  else if constexpr (std::is_same_v<T, int64_t>)
    return l;
  else
    return d;
}

} // namespace

template <typename T>
void StepDump::add(const std::string &name, io::Shape shape, const T *values,
                   int64_t count) {
  auto &store = storeOf<T>(floats, ints, longs, doubles);
  store.emplace_back(values, values + count);
  tensors.push_back(io::TensorRef::of(name, std::move(shape), store.back()));
}

StepDump::StepDump(exec::Executor &executor, const std::vector<int32_t> &tokens)
    : executor(executor) {
  const Plan &plan = executor.plan();
  exec::Memory &memory = executor.memory();
  int64_t rows = plan.training().micro_batch();
  add<int32_t>("tokens", {rows, int64_t(tokens.size()) / rows}, tokens.data(),
               int64_t(tokens.size()));
  const char *lossNames[] = {"loss.total", "loss.lm", "loss.mtp"};
  for (int i = 0; i < plan.losses_size() && i < 3; ++i) {
    float value = static_cast<float>(executor.loss(i));
    add<float>(lossNames[i], {}, &value, 1);
  }
  int logits = 0;
  for (const Kernel &k : plan.kernels())
    if (k.op() == "cross_entropy") {
      const Buffer &b = plan.buffers(k.inputs(0));
      add<float>("logits." + std::to_string(logits++), shapeOf(b),
                 reinterpret_cast<const float *>(memory.data(k.inputs(0))),
                 numElements(b));
    }
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    const auto *values = reinterpret_cast<const float *>(memory.data(i));
    if (b.kind() == PARAMETER)
      add<float>("param." + b.name(), shapeOf(b), values, numElements(b));
    else if (b.kind() == GRADIENT)
      add<float>("grad." + b.name(), shapeOf(b), values, numElements(b));
  }
}

io::Status StepDump::finish(const std::string &path, double lr,
                            double gradScale, const ExpertBalance &balance) {
  const Plan &plan = executor.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() == PARAMETER)
      add<float>("updated." + b.name(), shapeOf(b),
                 reinterpret_cast<const float *>(executor.memory().data(i)),
                 numElements(b));
  }
  add<double>("lr", {1}, &lr, 1);
  add<double>("grad_scale", {1}, &gradScale, 1);
  for (size_t l = 0; l < balance.lastLoads().size(); ++l) {
    const std::vector<int64_t> &load = balance.lastLoads()[l];
    add<int64_t>("load." + plan.buffers(balance.biasBuffer(l)).name(),
                 {int64_t(load.size())}, load.data(), int64_t(load.size()));
  }
  return io::saveSafetensors(path, tensors);
}

} // namespace dsflow::train
