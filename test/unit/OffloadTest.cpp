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
#include "StandInDevice.h"
#include "dist/SelfCommunicator.h"
#include "exec/Executor.h"
#include "exec/ExpertParallel.h"
#include "plan/ComposedOps.h"
#include "train/AdamW.h"
#include "train/AdamWUpdate.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <set>
#include <utility>

namespace dsflow {
namespace {

using test::randomize;
using test::StandInDevice;

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
  std::optional<test::TinyV3Executors> tiny = test::tinyV3Executors();
  EXPECT_TRUE(tiny);
  if (!tiny)
    return {};
  const Plan *plan = &tiny->plan;
  auto *cpu = &tiny->cpu, *split = &tiny->split;
  EXPECT_FALSE((*split)->offloadTo(std::make_unique<StandInDevice>(
      std::move(tiny->side),
      [plan, onDevice](int32_t k) { return onDevice(plan->kernels(k), k); })));
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

/// Trains three steps of tiny-v3 as train::Trainer does, on the CPU alone
/// and with the training state resident on a stand-in device taking the
/// kernels `onDevice` picks and the optimizer (the host moves the router
/// biases between steps, as the bias rule does): the same losses, gradient
/// norms, parameters and moments, bitwise. With every kernel on the device,
/// only tokens and biases go to it after the first step.
void expectResidentSameAsCpu(const std::function<bool(int32_t)> &onDevice,
                             bool bf16Moments, bool everyKernel) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  ASSERT_TRUE(plan);
  TrainingConfig &t = *plan->mutable_training(); // dsflow-compile's defaults
  t.set_beta1(0.9);
  t.set_beta2(0.95);
  t.set_epsilon(1e-8);
  t.set_weight_decay(0.1);
  auto cpu = exec::Executor::create(*plan, "tiny-v3");
  auto split = exec::Executor::create(*plan, "tiny-v3");
  auto side = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(cpu.ok() && split.ok() && side.ok());
  ASSERT_FALSE((*split)->offloadTo(
      std::make_unique<StandInDevice>(std::move(*side), onDevice),
      /*resident=*/true));
  exec::DeviceOptimizer *device = (*split)->deviceOptimizer();
  ASSERT_NE(device, nullptr);
  train::AdamW cpuAdam(*plan, bf16Moments), splitAdam(*plan, bf16Moments);
  ASSERT_FALSE(splitAdam.prepareDevice(*device, false));
  randomize(**cpu, **split, 7);
  (*split)->parametersWrittenOnHost();
  int64_t parameterBytes = plan->memory().parameter_bytes();
  for (int step = 0; step < 3; ++step) {
    int64_t uploadedBefore = (*split)->offloading()->counts().uploadedBytes;
    ASSERT_FALSE((*cpu)->zeroGradients());
    ASSERT_FALSE((*split)->zeroGradients());
    ASSERT_FALSE((*cpu)->runMicroBatch());
    ASSERT_FALSE((*split)->runMicroBatch());
    for (int l = 0; l < plan->losses_size(); ++l) {
      EXPECT_TRUE(std::isfinite((*cpu)->loss(l)));
      EXPECT_EQ((*cpu)->loss(l), (*split)->loss(l)) << "step " << step;
    }
    io::Expected<double> squares = device->squaredGradientSum();
    ASSERT_TRUE(squares.ok());
    EXPECT_EQ(*squares, cpuAdam.squaredGradientSum(
                            (*cpu)->memory(), [](int32_t) { return true; }));
    cpuAdam.step((*cpu)->memory(), 1e-2, 0.5);
    ASSERT_FALSE(splitAdam.step(*device, 1e-2, 0.5));
    for (int32_t b = 0; b < plan->buffers_size(); ++b) // the bias rule
      if (plan->buffers(b).kind() == PARAMETER && plan->buffers(b).no_grad())
        for (exec::Executor *e : {cpu->get(), split->get()})
          reinterpret_cast<float *>(e->memory().data(b))[0] += 0.25f;
    int64_t uploaded =
        (*split)->offloading()->counts().uploadedBytes - uploadedBefore;
    if (step > 0 && everyKernel)
      EXPECT_LT(uploaded, parameterBytes / 100) << "step " << step;
  }
  EXPECT_FALSE((*cpu)->runForward());
  EXPECT_FALSE((*split)->runForward());
  EXPECT_EQ((*cpu)->loss(0), (*split)->loss(0));
  ASSERT_FALSE((*split)->parametersToHost());
  EXPECT_TRUE(sameBytes(**cpu, **split, PARAMETER));
  ASSERT_FALSE(splitAdam.momentsFromDevice(*device));
  std::vector<io::TensorRef> a = cpuAdam.stateTensors(),
                             b = splitAdam.stateTensors();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_EQ(0, std::memcmp(a[i].data, b[i].data, a[i].byteSize)) << a[i].name;
}

TEST(Offload, ResidentTrainingStateEverythingOnTheDevice) {
  expectResidentSameAsCpu([](int32_t) { return true; }, false, true);
}

TEST(Offload, ResidentTrainingStateEveryOtherKernelBf16Moments) {
  expectResidentSameAsCpu([](int32_t k) { return k % 2 == 1; }, true, false);
}

/// --profile with a device: the device's kernels count with the device's
/// own times (here a millisecond each), the host's with the host's.
TEST(Offload, TheProfileTakesTheDevicesTimes) {
  std::optional<Plan> plan = compileForTest("tiny-v3.pbtxt", false);
  ASSERT_TRUE(plan);
  auto split = exec::Executor::create(*plan, "tiny-v3");
  auto side = exec::Executor::create(*plan, "tiny-v3");
  ASSERT_TRUE(split.ok() && side.ok());
  (*split)->setProfiling(true);
  const Plan &p = *plan;
  ASSERT_FALSE((*split)->offloadTo(
      std::make_unique<StandInDevice>(std::move(*side), [&p](int32_t k) {
        return p.kernels(k).op() == "mla_attention";
      })));
  ASSERT_FALSE((*split)->runMicroBatch());
  int attention = 0;
  for (int32_t k : plan->programs(0).kernels())
    attention += plan->kernels(k).op() == "mla_attention";
  ASSERT_GT(attention, 0);
  char *text = nullptr;
  size_t size = 0;
  std::FILE *out = open_memstream(&text, &size);
  (*split)->printProfile(out);
  std::fclose(out);
  std::string table(text, size);
  std::free(text);
  char expected[128];
  std::snprintf(expected, sizeof(expected), "%-22s %10.3f", "mla_attention",
                attention * 1e-3);
  EXPECT_NE(table.find(expected), std::string::npos) << table;
  EXPECT_NE(table.find(std::to_string(attention)), std::string::npos);
  EXPECT_NE(table.find("rms_norm"), std::string::npos) << table;
}

/// tiny-v3's executors with every kernel of `split` on the stand-in, both
/// randomized alike from `seed`.
std::optional<test::TinyV3Executors> everyKernelOnStandIn(uint64_t seed) {
  std::optional<test::TinyV3Executors> tiny = test::tinyV3Executors();
  if (!tiny || tiny->split->offloadTo(std::make_unique<StandInDevice>(
                   std::move(tiny->side), [](int32_t) { return true; })))
    return std::nullopt;
  randomize(*tiny->cpu, *tiny->split, seed);
  return tiny;
}

/// A pipeline stage's message leaves a device as a started copy
/// (Executor::startCopyOut): it holds the bytes the kernels so far left,
/// only once finished (the stand-in leaves NaNs before), and the host waits
/// for no copy back while the kernels are only launched (startKernels).
TEST(Offload, AStartedCopyOutHoldsWhatTheKernelsLeft) {
  std::optional<test::TinyV3Executors> tiny = everyKernelOnStandIn(11);
  ASSERT_TRUE(tiny);
  const Plan *plan = &tiny->plan;
  auto *cpu = &tiny->cpu, *split = &tiny->split;
  // Every activation a kernel writes, copied out right after it.
  std::vector<std::vector<std::byte>> expected, copied;
  auto copyAfter = [&](exec::Executor &e, bool started,
                       std::vector<std::vector<std::byte>> &into) {
    return [&, started](int32_t k, bool after) -> io::Status {
      if (!after)
        return std::nullopt;
      for (int32_t b : plan->kernels(k).outputs()) {
        if (plan->buffers(b).kind() != ACTIVATION)
          continue;
        auto &to = into.emplace_back(size_t(plan->buffers(b).bytes()));
        const std::byte *now = e.memory().data(b);
        if (!started)
          std::copy(now, now + to.size(), to.begin());
        else if (io::Status s = e.startCopyOut(b, to.data()))
          return s;
      }
      return std::nullopt;
    };
  };
  std::vector<char> all(plan->kernels_size(), 1);
  ASSERT_FALSE((*cpu)->runKernels(all, copyAfter(**cpu, false, expected)));
  auto copyHook = copyAfter(**split, true, copied);
  ASSERT_FALSE((*split)->startKernels(all, copyHook));
  for (bool launchedAll = false; !launchedAll;) {
    io::Expected<bool> launched = (*split)->launchKernels();
    ASSERT_TRUE(launched);
    launchedAll = *launched;
  }
  EXPECT_EQ((*split)->offloading()->counts().waitedDownloads, 0);
  ASSERT_EQ(copied.size(), expected.size());
  ASSERT_FALSE(copied.empty());
  EXPECT_NE(copied.front(), expected.front()); // not there yet
  ASSERT_FALSE((*split)->finishCopiesOut());
  for (size_t i = 0; i < copied.size(); ++i)
    EXPECT_EQ(copied[i], expected[i]) << "copy " << i;
  ASSERT_FALSE((*split)->finishKernels());
  EXPECT_GT((*split)->offloading()->counts().waitedDownloads, 0);
}

/// Executor::launchKernels stops before each kernel at which the host would
/// wait for the device: with every kernel on the stand-in, a routed FFN's
/// first read of its row counts since the dispatch wrote them (as on CUDA).
/// The kernels run in program order all the same: the results are the CPU
/// backend's, bitwise.
TEST(Offload, LaunchesStopWhereTheHostWouldWait) {
  std::optional<test::TinyV3Executors> tiny = everyKernelOnStandIn(13);
  ASSERT_TRUE(tiny);
  const Plan *plan = &tiny->plan;
  auto *cpu = &tiny->cpu, *split = &tiny->split;
  // The first reads, from the program order.
  std::vector<char> all(plan->kernels_size(), 1);
  std::set<int32_t> firstReads, read;
  std::vector<int32_t> order;
  ASSERT_FALSE((*cpu)->runKernels(all, [&](int32_t k, bool after) {
    if (!after)
      order.push_back(k);
    return io::Status();
  }));
  for (int32_t k : order) {
    for (int32_t b : plan->kernels(k).outputs())
      read.erase(b);
    int32_t counts = routedRowCounts(plan->kernels(k));
    if (counts >= 0 && read.insert(counts).second)
      firstReads.insert(k);
  }
  ASSERT_FALSE(firstReads.empty()); // tiny-v3 has MoE layers
  // Each launchKernels call's kernels.
  std::vector<std::vector<int32_t>> calls(1);
  ASSERT_FALSE((*split)->startKernels(all, [&](int32_t k, bool after) {
    if (!after)
      calls.back().push_back(k);
    return io::Status();
  }));
  for (bool launchedAll = false; !launchedAll; calls.emplace_back()) {
    io::Expected<bool> launched = (*split)->launchKernels();
    ASSERT_TRUE(launched);
    launchedAll = *launched;
  }
  calls.pop_back();
  ASSERT_FALSE((*split)->finishKernels());
  ASSERT_EQ(calls.size(), firstReads.size() + 1); // kernel 0 reads no counts
  std::vector<int32_t> launchedOrder;
  for (size_t i = 0; i < calls.size(); ++i) {
    ASSERT_FALSE(calls[i].empty()) << "call " << i;
    EXPECT_EQ(firstReads.count(calls[i].front()), i > 0 ? 1u : 0u)
        << "call " << i << " starts at kernel " << calls[i].front();
    for (size_t j = 1; j < calls[i].size(); ++j)
      EXPECT_EQ(firstReads.count(calls[i][j]), 0u)
          << "kernel " << calls[i][j] << " inside call " << i;
    launchedOrder.insert(launchedOrder.end(), calls[i].begin(), calls[i].end());
  }
  EXPECT_EQ(launchedOrder, order);
  ASSERT_FALSE((*split)->parametersToHost());
  EXPECT_TRUE(sameBytes(**cpu, **split, GRADIENT));
  for (int i = 0; i < plan->losses_size(); ++i)
    EXPECT_EQ((*cpu)->loss(i), (*split)->loss(i)) << "loss " << i;
}

/// Under expert parallelism (here a group of one rank) the routed experts'
/// kernels exchange rows inside the host's kernels, so they stay on the
/// host whatever the device runs (Offload::keepOnHost), and the training
/// state cannot live on the device; the results are the CPU's, bitwise.
TEST(Offload, RoutedExpertsStayOnTheHostUnderExpertParallelism) {
  std::optional<test::TinyV3Executors> tiny = test::tinyV3Executors();
  ASSERT_TRUE(tiny);
  const Plan &plan = tiny->plan;
  dist::SelfCommunicator self;
  exec::ExpertParallel group(self);
  auto split = exec::Executor::create(plan, "tiny-v3", &group);
  ASSERT_TRUE(split.ok());
  exec::Executor &cpu = *tiny->cpu, &ep = **split;
  auto standIn = [&] {
    return std::make_unique<StandInDevice>(std::move(tiny->side),
                                           [](int32_t) { return true; });
  };
  io::Status resident = ep.offloadTo(standIn(), true);
  ASSERT_TRUE(resident);
  EXPECT_NE(resident->message.find("training state stays on the host"),
            std::string::npos)
      << resident->message;
  auto side = exec::Executor::create(plan, "tiny-v3");
  ASSERT_TRUE(side.ok());
  tiny->side = std::move(*side);
  ASSERT_FALSE(ep.offloadTo(standIn()));
  randomize(cpu, ep, 17);
  // The train program's routed-expert kernels, and all of its kernels.
  int64_t routed = 0, kernels = plan.programs(0).kernels_size();
  for (int32_t k : plan.programs(0).kernels())
    routed += routedRowCounts(plan.kernels(k)) >= 0;
  ASSERT_GT(routed, 0);
  ASSERT_FALSE(cpu.runMicroBatch());
  ASSERT_FALSE(ep.runMicroBatch());
  EXPECT_EQ(ep.offloading()->counts().hostKernels, routed);
  EXPECT_EQ(ep.offloading()->counts().deviceKernels, kernels - routed);
  ASSERT_FALSE(ep.parametersToHost());
  EXPECT_TRUE(sameBytes(cpu, ep, GRADIENT));
  for (int i = 0; i < plan.losses_size(); ++i)
    EXPECT_EQ(cpu.loss(i), ep.loss(i)) << "loss " << i;
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
  ASSERT_FALSE(offload.beginProgram());
  ASSERT_FALSE(offload.runOnDevice(0));
  ASSERT_FALSE(offload.beforeHost(1));
  offload.afterHost(1);
  ASSERT_FALSE(offload.endProgram());
  EXPECT_EQ(recorded.downloaded, std::vector<int32_t>{2});
}

} // namespace
} // namespace dsflow
