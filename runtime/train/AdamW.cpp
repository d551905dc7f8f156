//===- AdamW.cpp - The optimizer, with optional BF16 moments --------------===//
#include "train/AdamW.h"
#include "plan/PlanFile.h"
#include "train/AdamWUpdate.h"

#include "io/BFloat16.h"

#include <cmath>

namespace dsflow::train {

AdamW::AdamW(const Plan &plan, bool bf16Moments,
             const std::function<bool(int32_t)> &updates)
    : plan(plan), config(plan.training()), bf16(bf16Moments) {
  for (int32_t g = 0; g < plan.buffers_size(); ++g) {
    const Buffer &grad = plan.buffers(g);
    if (grad.kind() != GRADIENT || (updates && !updates(g)))
      continue;
    const Buffer &param = plan.buffers(grad.gradient_of());
    Slot slot{grad.gradient_of(),
              g,
              numElements(param),
              param.shape_size() >= 2,
              param.name(),
              {},
              {},
              {},
              {}};
    if (bf16) {
      slot.m16.assign(slot.size, io::BF16{0});
      slot.v16.assign(slot.size, io::BF16{0});
    } else {
      slot.m.assign(slot.size, 0.0f);
      slot.v.assign(slot.size, 0.0f);
    }
    slots.push_back(std::move(slot));
  }
}

double
AdamW::squaredGradientSum(exec::Memory &memory,
                          const std::function<bool(int32_t)> &counted) const {
  double sum = 0;
  for (int32_t b = 0; b < plan.buffers_size(); ++b) {
    if (plan.buffers(b).kind() != GRADIENT || !counted(b))
      continue;
    const auto *g = reinterpret_cast<const float *>(memory.data(b));
    for (int64_t i = 0, n = numElements(plan.buffers(b)); i < n; ++i)
      sum += double(g[i]) * double(g[i]);
  }
  return sum;
}

exec::AdamWScalars AdamW::scalarsFor(int64_t step, double lr,
                                     double gradScale) const {
  exec::AdamWScalars a;
  a.beta1 = float(config.beta1());
  a.beta2 = float(config.beta2());
  a.eps = float(config.epsilon());
  const double correction1 = 1.0 - std::pow(config.beta1(), double(step));
  const double correction2 = 1.0 - std::pow(config.beta2(), double(step));
  a.stepSize = float(lr / correction1);
  a.sqrtCorrection2 = float(std::sqrt(correction2));
  a.matrixDecay = float(1.0 - lr * config.weight_decay());
  a.gradScale = gradScale;
  return a;
}

void AdamW::step(exec::Memory &memory, double lr, double gradScale) {
  ++stepCount;
  stepTensor[0] = stepCount;
  const exec::AdamWScalars a = scalarsFor(stepCount, lr, gradScale);
  for (Slot &s : slots) {
    auto *p = reinterpret_cast<float *>(memory.data(s.param));
    const auto *g = reinterpret_cast<const float *>(memory.data(s.grad));
    const float decay = s.decay ? a.matrixDecay : 1.0f;
    if (bf16)
      adamwUpdate(p, g, s.m16.data(), s.v16.data(), s.size, decay, a);
    else
      adamwUpdate(p, g, s.m.data(), s.v.data(), s.size, decay, a);
  }
}

io::Status AdamW::step(exec::DeviceOptimizer &device, double lr,
                       double gradScale) {
  ++stepCount;
  stepTensor[0] = stepCount;
  const exec::AdamWScalars a = scalarsFor(stepCount, lr, gradScale);
  for (const Slot &s : slots)
    if (io::Status e = device.adamw(s.param, s.grad, s.decay, a))
      return e;
  return std::nullopt;
}

io::Status AdamW::prepareDevice(exec::DeviceOptimizer &device, bool resumed) {
  if (io::Status e = device.prepareMoments(bf16))
    return e;
  if (!resumed)
    return std::nullopt;
  for (const Slot &s : slots)
    if (io::Status e =
            bf16 ? device.uploadMoments(s.grad, s.m16.data(), s.v16.data())
                 : device.uploadMoments(s.grad, s.m.data(), s.v.data()))
      return e;
  return std::nullopt;
}

io::Status AdamW::momentsFromDevice(exec::DeviceOptimizer &device) {
  for (Slot &s : slots)
    if (io::Status e =
            bf16 ? device.downloadMoments(s.grad, s.m16.data(), s.v16.data())
                 : device.downloadMoments(s.grad, s.m.data(), s.v.data()))
      return e;
  return std::nullopt;
}

std::vector<io::TensorRef> AdamW::stateTensors() const {
  std::vector<io::TensorRef> tensors;
  for (const Slot &s : slots) {
    io::Shape shape(plan.buffers(s.param).shape().begin(),
                    plan.buffers(s.param).shape().end());
    if (bf16) {
      tensors.push_back(io::TensorRef::of(s.name + ".exp_avg", shape, s.m16));
      tensors.push_back(
          io::TensorRef::of(s.name + ".exp_avg_sq", shape, s.v16));
    } else {
      tensors.push_back(io::TensorRef::of(s.name + ".exp_avg", shape, s.m));
      tensors.push_back(io::TensorRef::of(s.name + ".exp_avg_sq", shape, s.v));
    }
  }
  tensors.push_back(io::TensorRef::of("optimizer.step", {1}, stepTensor));
  return tensors;
}

io::Status AdamW::loadState(const io::SafetensorsFile &file) {
  io::Expected<std::vector<int64_t>> step =
      file.read<int64_t>("optimizer.step", {1});
  if (!step)
    return step.error();
  for (Slot &s : slots) {
    io::Shape shape(plan.buffers(s.param).shape().begin(),
                    plan.buffers(s.param).shape().end());
    if (bf16) {
      auto m = file.read<io::BF16>(s.name + ".exp_avg", shape);
      auto v = file.read<io::BF16>(s.name + ".exp_avg_sq", shape);
      if (!m || !v)
        return m ? v.error() : m.error();
      s.m16 = std::move(*m);
      s.v16 = std::move(*v);
    } else {
      auto m = file.read<float>(s.name + ".exp_avg", shape);
      auto v = file.read<float>(s.name + ".exp_avg_sq", shape);
      if (!m || !v)
        return m ? v.error() : m.error();
      s.m = std::move(*m);
      s.v = std::move(*v);
    }
  }
  stepCount = (*step)[0];
  stepTensor[0] = stepCount;
  return std::nullopt;
}

} // namespace dsflow::train
