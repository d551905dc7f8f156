//===- StandInDevice.h - A CPU executor posing as a device ------*- C++ -*-===//
//
// For the offload tests: the mirror device (a second CPU executor, its
// memory NaN until copied to) runs the kernels a test picks, and its
// optimizer runs the host's AdamW loop on moments it keeps. Every copy the
// offload forgets, or makes from the wrong side, shows as a difference or a
// NaN against the CPU backend alone.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_UNIT_STANDINDEVICE_H
#define DSFLOW_TEST_UNIT_STANDINDEVICE_H

#include "CompileForTest.h"
#include "exec/Executor.h"
#include "exec/MirrorDevice.h"
#include "train/AdamW.h"
#include "train/AdamWUpdate.h"

#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace dsflow::test {

/// A device optimizer over the stand-in's memory: the host's AdamW loop
/// (train/AdamWUpdate.h) on moments it keeps.
class StandInOptimizer : public exec::DeviceOptimizer {
public:
  explicit StandInOptimizer(exec::Executor &side) : side(side) {}
  io::Status prepareMoments(bool bf16Moments) override {
    bf16 = bf16Moments;
    for (int32_t b = 0; b < side.plan().buffers_size(); ++b)
      if (side.plan().buffers(b).kind() == GRADIENT) {
        size_t n = size_t(numElements(side.plan().buffers(b)));
        m[b].assign(n, 0.0f), v[b].assign(n, 0.0f);
        m16[b].assign(n, io::BF16{0}), v16[b].assign(n, io::BF16{0});
      }
    return std::nullopt;
  }
  io::Status zeroGradients() override {
    side.memory().zeroGradients();
    return std::nullopt;
  }
  /// With `ranks`, it sums "over ranks" (sumsOverRanks): startReduction
  /// records each bucket with a copy of its gradients' bytes then and the
  /// device's launches so far; the sum itself is the identity.
  void pretendRanks(bool ranks) { overRanks = ranks; }
  bool sumsOverRanks() const override { return overRanks; }
  struct StartedSum {
    int64_t begin, end, launchesBefore;
    std::map<int32_t, std::vector<std::byte>> gradients;
  };
  io::Status startReduction(int64_t begin, int64_t end) override {
    StartedSum sum{begin, end, launches, {}};
    const Plan &plan = side.plan();
    for (int32_t b = 0; b < plan.buffers_size(); ++b)
      if (plan.buffers(b).kind() == GRADIENT &&
          plan.buffers(b).offset() >= begin && plan.buffers(b).offset() < end) {
        const std::byte *bytes = side.memory().data(b);
        sum.gradients[b].assign(bytes, bytes + plan.buffers(b).bytes());
      }
    started.push_back(std::move(sum));
    return std::nullopt;
  }
  std::vector<StartedSum> started;
  int64_t launches = 0;
  /// Buffer `b` as the device holds it.
  const std::byte *deviceBytes(int32_t b) { return side.memory().data(b); }
  io::Expected<double> squaredGradientSum() override {
    return train::AdamW(side.plan(), bf16)
        .squaredGradientSum(side.memory(), [](int32_t) { return true; });
  }
  io::Status adamw(int32_t param, int32_t grad, bool matrix,
                   const exec::AdamWScalars &a) override {
    auto *p = reinterpret_cast<float *>(side.memory().data(param));
    const auto *g = reinterpret_cast<const float *>(side.memory().data(grad));
    float decay = matrix ? a.matrixDecay : 1.0f;
    if (bf16)
      train::adamwUpdate(p, g, m16[grad].data(), v16[grad].data(),
                         int64_t(m16[grad].size()), decay, a);
    else
      train::adamwUpdate(p, g, m[grad].data(), v[grad].data(),
                         int64_t(m[grad].size()), decay, a);
    return std::nullopt;
  }
  io::Status downloadMoments(int32_t grad, void *to, void *toV) override {
    copy(grad, to, toV, true);
    return std::nullopt;
  }
  io::Status uploadMoments(int32_t grad, const void *from,
                           const void *fromV) override {
    copy(grad, const_cast<void *>(from), const_cast<void *>(fromV), false);
    return std::nullopt;
  }

private:
  void copy(int32_t grad, void *a, void *b, bool out) {
    size_t bytes = bf16 ? m16[grad].size() * 2 : m[grad].size() * 4;
    void *mine[] = {bf16 ? (void *)m16[grad].data() : (void *)m[grad].data(),
                    bf16 ? (void *)v16[grad].data() : (void *)v[grad].data()};
    void *theirs[] = {a, b};
    for (int i = 0; i < 2; ++i)
      std::memcpy(out ? theirs[i] : mine[i], out ? mine[i] : theirs[i], bytes);
  }
  exec::Executor &side;
  bool bf16 = false, overRanks = false;
  std::map<int32_t, std::vector<float>> m, v;
  std::map<int32_t, std::vector<io::BF16>> m16, v16;
};

/// The mirror device (exec/MirrorDevice.h) named "stand-in", with the
/// optimizer above and a millisecond per kernel when timing.
class StandInDevice : public exec::MirrorDevice {
public:
  StandInDevice(std::unique_ptr<exec::Executor> memory,
                std::function<bool(int32_t)> runs)
      : MirrorDevice(std::move(memory), std::move(runs)), adam(mirror()) {}
  std::string name() const override { return "stand-in"; }
  io::Status launch(int32_t kernel) override {
    if (timing)
      times.push_back({kernel, 1e-3});
    ++adam.launches;
    return MirrorDevice::launch(kernel);
  }
  exec::DeviceOptimizer *optimizer() override { return &adam; }
  StandInOptimizer &standInOptimizer() { return adam; }
  void setTiming(bool on) override { timing = on; }
  io::Expected<std::vector<std::pair<int32_t, double>>>
  takeKernelTimes() override {
    return std::exchange(times, {});
  }

private:
  StandInOptimizer adam;
  bool timing = false;
  std::vector<std::pair<int32_t, double>> times;
};

/// Same random parameters and tokens in both.
inline void randomize(exec::Executor &a, exec::Executor &b, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  const Plan &plan = a.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &buffer = plan.buffers(i);
    if (buffer.kind() != PARAMETER)
      continue;
    auto *p = reinterpret_cast<float *>(a.memory().data(i));
    for (int64_t j = 0; j < numElements(buffer); ++j)
      p[j] = buffer.shape_size() == 1 && !buffer.no_grad() ? 1 + normal(rng)
                                                           : normal(rng);
    std::memcpy(b.memory().data(i), p, static_cast<size_t>(buffer.bytes()));
  }
  std::uniform_int_distribution<int32_t> token(
      0, int32_t(plan.model().vocab_size()) - 1);
  for (int64_t j = 0; j < a.tokenCount(); ++j)
    a.tokens()[j] = b.tokens()[j] = token(rng);
}

/// tiny-v3 three times: on the CPU alone, on the host of a split run, and
/// as the memory of that run's stand-in device; randomize(cpu, split) next.
struct TinyV3Executors {
  Plan plan;
  std::unique_ptr<exec::Executor> cpu, split, side;
};
inline std::optional<TinyV3Executors> tinyV3Executors() {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  if (!plan)
    return std::nullopt;
  auto cpu = exec::Executor::create(*plan, "tiny-v3");
  auto split = exec::Executor::create(*plan, "tiny-v3");
  auto side = exec::Executor::create(*plan, "tiny-v3");
  if (!cpu.ok() || !split.ok() || !side.ok())
    return std::nullopt;
  return TinyV3Executors{std::move(*plan), std::move(*cpu), std::move(*split),
                         std::move(*side)};
}

} // namespace dsflow::test

#endif // DSFLOW_TEST_UNIT_STANDINDEVICE_H
