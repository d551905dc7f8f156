//===- OffloadTest.cpp - Kernels split between host and a device ----------===//
//
// A stand-in device (a second CPU executor with its own memory, filled with
// NaNs where nothing was copied) runs a chosen subset of tiny-v3's kernels.
// Whatever the split, two micro-batches (with the host changing parameters
// between them, as the optimizer does) must leave exactly the losses,
// gradients and expert counts of the CPU backend alone: any copy Offload
// forgets, or makes from the wrong side, shows as a difference or a NaN.
//
//===----------------------------------------------------------------------===//
#include "CompileForTest.h"
#include "exec/Executor.h"

#include <cmath>
#include <cstring>
#include <functional>
#include <random>

namespace dsflow {
namespace {

class StandInDevice : public exec::Device {
public:
  StandInDevice(std::unique_ptr<exec::Executor> memory,
                std::function<bool(int32_t)> runs)
      : side(std::move(memory)), chosen(std::move(runs)) {
    const Plan &plan = side->plan();
    for (int32_t b = 0; b < plan.buffers_size(); ++b)
      std::memset(side->memory().data(b), 0xFF, bytes(b)); // NaNs
  }
  std::string name() const override { return "stand-in"; }
  bool runs(int32_t kernel) const override { return chosen(kernel); }
  io::Status upload(int32_t b, const std::byte *from) override {
    std::memcpy(side->memory().data(b), from, bytes(b));
    return std::nullopt;
  }
  io::Status download(int32_t b, std::byte *to) override {
    std::memcpy(to, side->memory().data(b), bytes(b));
    return std::nullopt;
  }
  io::Status zero(int32_t b) override {
    std::memset(side->memory().data(b), 0, bytes(b));
    return std::nullopt;
  }
  io::Status launch(int32_t kernel) override {
    std::vector<char> one(side->plan().kernels_size(), 0);
    one[kernel] = 1;
    return side->runKernels(one, nullptr);
  }

private:
  size_t bytes(int32_t b) const {
    return static_cast<size_t>(side->plan().buffers(b).bytes());
  }
  std::unique_ptr<exec::Executor> side;
  std::function<bool(int32_t)> chosen;
};

/// Same random parameters and tokens in both.
void randomize(exec::Executor &a, exec::Executor &b, uint64_t seed) {
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

/// Whether buffers of `kind` hold the same bytes in both.
bool sameBytes(exec::Executor &a, exec::Executor &b, BufferKind kind) {
  const Plan &plan = a.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i)
    if (plan.buffers(i).kind() == kind &&
        std::memcmp(a.memory().data(i), b.memory().data(i),
                    static_cast<size_t>(plan.buffers(i).bytes())) != 0) {
      ADD_FAILURE() << plan.buffers(i).name() << " differs";
      return false;
    }
  return true;
}

/// Runs two micro-batches of tiny-v3 on the CPU alone and with the kernels
/// `onDevice` picks offloaded; returns the offload's counts.
exec::OffloadCounts
expectSameAsCpu(const std::function<bool(const Kernel &, int32_t)> &onDevice) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  EXPECT_TRUE(plan);
  if (!plan)
    return {};
  auto cpu = exec::Executor::create(*plan, "tiny-v3");
  auto split = exec::Executor::create(*plan, "tiny-v3");
  auto side = exec::Executor::create(*plan, "tiny-v3");
  EXPECT_TRUE(cpu.ok() && split.ok() && side.ok());
  if (!cpu.ok() || !split.ok() || !side.ok())
    return {};
  const Plan &p = *plan;
  EXPECT_FALSE((*split)->offloadTo(std::make_unique<StandInDevice>(
      std::move(*side),
      [&p, onDevice](int32_t k) { return onDevice(p.kernels(k), k); })));
  randomize(**cpu, **split, 7);
  for (int microBatch = 0; microBatch < 2; ++microBatch) {
    EXPECT_FALSE((*cpu)->runMicroBatch());
    EXPECT_FALSE((*split)->runMicroBatch());
    for (int l = 0; l < plan->losses_size(); ++l) {
      EXPECT_TRUE(std::isfinite((*cpu)->loss(l)));
      EXPECT_EQ((*cpu)->loss(l), (*split)->loss(l)) << "loss " << l;
    }
    EXPECT_TRUE(sameBytes(**cpu, **split, GRADIENT));
    // The expert counts the bias update reads.
    for (const Kernel &k : plan->kernels())
      if (k.op() == "dispatch" && k.outputs_size() >= 2)
        EXPECT_EQ(0, std::memcmp((*cpu)->memory().data(k.outputs(1)),
                                 (*split)->memory().data(k.outputs(1)),
                                 plan->buffers(k.outputs(1)).bytes()));
    // The optimizer's part: new parameters and tokens on the host.
    randomize(**cpu, **split, 8 + microBatch);
  }
  EXPECT_FALSE((*cpu)->runForward());
  EXPECT_FALSE((*split)->runForward());
  EXPECT_EQ((*cpu)->loss(0), (*split)->loss(0));
  return (*split)->offloading()->counts();
}

TEST(Offload, EveryOtherKernelOnTheDevice) {
  exec::OffloadCounts counts =
      expectSameAsCpu([](const Kernel &, int32_t k) { return k % 2 == 0; });
  EXPECT_GT(counts.deviceKernels, 0);
  EXPECT_GT(counts.hostKernels, 0);
  EXPECT_GT(counts.uploadedBytes, 0);
  EXPECT_GT(counts.downloadedBytes, 0);
}

TEST(Offload, TheMoeRoutingOnTheHostTheRestOnTheDevice) {
  expectSameAsCpu([](const Kernel &kernel, int32_t) {
    return kernel.op().find("moe_gate") == std::string::npos &&
           kernel.op().find("dispatch") == std::string::npos &&
           kernel.op().find("combine") == std::string::npos;
  });
}

TEST(Offload, EverythingOnTheDevice) {
  exec::OffloadCounts counts =
      expectSameAsCpu([](const Kernel &, int32_t) { return true; });
  EXPECT_EQ(counts.hostKernels, 0);
}

TEST(Offload, NothingOnTheDeviceCopiesNothing) {
  exec::OffloadCounts counts =
      expectSameAsCpu([](const Kernel &, int32_t) { return false; });
  EXPECT_EQ(counts.deviceKernels, 0);
  EXPECT_EQ(counts.uploadedBytes + counts.downloadedBytes, 0);
}

/// A device that records which buffers it was asked to copy back.
class RecordingDevice : public exec::Device {
public:
  std::string name() const override { return "recording"; }
  bool runs(int32_t kernel) const override { return kernel == 0; }
  io::Status upload(int32_t, const std::byte *) override {
    return std::nullopt;
  }
  io::Status download(int32_t b, std::byte *) override {
    downloaded.push_back(b);
    return std::nullopt;
  }
  io::Status zero(int32_t) override { return std::nullopt; }
  io::Status launch(int32_t) override { return std::nullopt; }
  std::vector<int32_t> downloaded;
};

/// The arena reuses bytes: a buffer the device wrote and the host then
/// overwrote (through another buffer at the same offset) must not come back
/// over the host's newer bytes; one that nothing overwrote must.
TEST(Offload, ADeadBufferDoesNotComeBackOverALiveOne) {
  Plan plan;
  auto buffer = [&](int64_t offset) {
    Buffer &b = *plan.add_buffers();
    b.set_kind(ACTIVATION);
    b.set_dtype(DTYPE_F32);
    b.add_shape(4);
    b.set_bytes(16);
    b.set_offset(offset);
  };
  buffer(0);  // 0: written on the device, then dead
  buffer(0);  // 1: written on the host over it, live at the end
  buffer(64); // 2: written on the device, live at the end
  Kernel &onDevice = *plan.add_kernels();
  onDevice.add_outputs(0);
  onDevice.add_outputs(2);
  plan.add_kernels()->add_outputs(1);
  exec::Memory memory(plan);
  auto device = std::make_unique<RecordingDevice>();
  RecordingDevice &recorded = *device;
  exec::Offload offload(plan, memory, std::move(device));
  offload.beginProgram();
  ASSERT_FALSE(offload.runOnDevice(0));
  ASSERT_FALSE(offload.beforeHost(1));
  offload.afterHost(1);
  ASSERT_FALSE(offload.endProgram());
  EXPECT_EQ(recorded.downloaded, std::vector<int32_t>{2});
}

} // namespace
} // namespace dsflow
