//===- dsflow-run.cpp - Execute a training plan ---------------------------===//
//
// dsflow-run STEP.plan --data FILE --steps N [options]
// Trains on the CPU backend (with --device cuda, the kernels the plan has CUDA
// code for run on the GPU): one progress line per logging interval, a
// summary at the end, crash-safe checkpoints, and a clean stop (with a
// checkpoint) on SIGINT or SIGTERM.
//
//===----------------------------------------------------------------------===//
#include "exec/Executor.h"
#include "exec/MirrorDevice.h"
#include "exec/ExpertParallel.h"
#include "plan/PlanFile.h"
#include "dist/Launch.h"
#include "dist/LaunchEnv.h"
#include "dist/PlanCheck.h"
#include "io/FileUtil.h"
#include "io/Fnv1a.h"
#include "plan/KernelStages.h"
#include "train/Trainer.h"
#ifdef DSFLOW_WITH_CUDA_DEVICE
#include "runtime/backends/cuda/CudaDevice.h"
#endif

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

using namespace dsflow;

namespace {

std::atomic<bool> stopRequested{false};
void onSignal(int) { stopRequested = true; }

const char *kUsage =
    "usage: dsflow-run STEP.plan --data FILE --steps N [options]\n"
    "  --data FILE             training text (bytes) or token file (.bin16/.bin32)\n"
    "  --format F              auto|bytes|u16|u32 (default auto)\n"
    "  --steps N               train until step N\n"
    "  --val-fraction X        held-out fraction of the data (default 0.1)\n"
    "  --log-interval N        a progress line every N steps (default 10)\n"
    "  --eval-interval N       validation loss every N steps (default: at end)\n"
    "  --eval-batches N        micro-batches per evaluation (default 8)\n"
    "  --checkpoint-dir DIR    save checkpoints there (at the end, on a signal)\n"
    "  --checkpoint-interval N also every N steps\n"
    "  --resume                continue from DIR's latest checkpoint\n"
    "  --loss-log FILE         per-step losses as CSV\n"
    "  --init-std X            std of the initial weights (default 0.02)\n"
    "  --seed N                initialization and data-order seed (default:\n"
    "                          the plan's, dsflow-compile --seed)\n"
    "  --print-memory          report the measured activation peak and the\n"
    "                          parameter memory of rank 0\n"
    "  --dump-step FILE        the first step's internals, as safetensors\n"
    "  --trace FILE            the kernels every rank ran in the first steps,\n"
    "                          as a Chrome trace (Perfetto)\n"
    "  --trace-steps N         steps to trace (default 2)\n"
    "  --save-params FILE      the final parameters, as safetensors\n"
    "  --expert-loads FILE     tokens per routed expert over the run (JSON)\n"
    "  --profile               time per op, printed at the end\n"
    "  --device D              cpu (default) or cuda: the kernels the plan has\n"
    "                          CUDA code for (dsflow-compile --cuda) on GPU 0,\n"
    "                          the rest on the CPU; FP32 plans; under mpirun\n"
    "                          one GPU per rank, gradients summed by NCCL\n"
    "                          (pipeline and EP ranks may share GPUs).\n"
    "                          The parameters, gradients and AdamW state stay\n"
    "                          on the GPU (the optimizer runs there; on the\n"
    "                          host under pipeline or expert parallelism,\n"
    "                          whose routed experts run on the host).\n"
    "                          cpu-mirror: every other kernel on a second\n"
    "                          copy of the memory on the CPU, to check the\n"
    "                          device path's copies without a GPU;\n"
    "                          cpu-mirror-all: every kernel there\n"
    "  --host-optimizer        with --device cuda: keep them on the host and\n"
    "                          run AdamW there (copies every micro-batch)\n"
    "  --tf32                  with --device cuda: FP32 GEMMs on the tensor\n"
    "                          cores in TF32 (faster, ~1e-3 relative)\n"
    "  --bf16-gemms            with --device cuda: GEMM operands in BF16,\n"
    "                          FP32 accumulation and outputs (as\n"
    "                          torch.autocast(bfloat16))\n"
    "  --emulate-fp8           with --device cuda: the linear layers of an\n"
    "                          --fp8 plan as the CPU runs them (operands\n"
    "                          quantized to E4M3 and back, FP32 GEMMs), not\n"
    "                          on the FP8 tensor cores\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "dsflow-run: error: %s\n", message.c_str());
  return 1;
}

/// Parses a whole-string integer.
bool parseInt(const char *text, int64_t &out) {
  char *end = nullptr;
  long long v = std::strtoll(text, &end, 10);
  if (!*text || *end)
    return false;
  out = v;
  return true;
}
bool parseDouble(const char *text, double &out) {
  char *end = nullptr;
  out = std::strtod(text, &end);
  return *text && !*end;
}

/// Prints `message`; on several ranks, ends the whole job so that no rank waits
/// for this one.
int failJob(dist::Communicator &world, const std::string &message) {
  if (world.size() == 1)
    return fail(message);
  std::fprintf(stderr, "dsflow-run: rank %d: error: %s\n", world.rank(),
               message.c_str());
  dist::abortJob(1);
}

/// Runs the kernels with CUDA code on GPU 0 (--device cuda), or every other
/// kernel on a mirror device (--device cpu-mirror; cpu-mirror-all: every
/// kernel).
struct CudaOptions {
  bool on = false, mirror = false, mirrorAll = false, hostOptimizer = false,
       emulateFp8 = false;
#ifdef DSFLOW_WITH_CUDA_DEVICE
  cuda::CudaDevice::Options device;
#endif
  /// The GEMM flag given (--tf32, --bf16-gemms), for messages.
  std::string gemmFlag;
};

io::Status offloadToCuda(exec::Executor &executor, const std::string &planPath,
                         const CudaOptions &cuda, dist::Communicator &world) {
#ifdef DSFLOW_WITH_CUDA_DEVICE
  const Plan &plan = executor.plan();
  if (io::Status e = cuda::CudaDevice::accepts(plan, planPath))
    return e;
  // One GPU per rank of a node.
  io::Expected<dist::LaunchConfig> launch = dist::detectLaunch(
      [](const char *name) { return std::getenv(name); }, true);
  int gpu = launch ? launch->localRank : 0;
  // Pipeline stages and expert parallelism keep the training state on the
  // host, which sums the gradients and moves the stages' messages and the
  // experts' rows: such ranks need no NCCL, so more of them than GPUs share
  // (round robin).
  bool pipeline = plan.has_cluster() && plan.cluster().pp() > 1;
  bool experts = plan.has_cluster() && plan.cluster().ep() > 1;
  io::Expected<std::unique_ptr<cuda::CudaDriver>> driver =
      cuda::CudaDriver::open(gpu, pipeline || experts);
  if (driver)
    gpu = (*driver)->ordinal();
  if (!driver)
    return driver.error();
  io::Expected<std::unique_ptr<cuda::CudaDevice>> device =
      cuda::CudaDevice::create(executor.plan(), planPath, std::move(*driver),
                               cuda.device);
  if (!device)
    return device.error();
  if (pipeline) {
    // Each micro-batch in flight on the rank gets a device (an arena) of its
    // own; the training state stays on the host, which sums the gradients.
    exec::Executor::DeviceFactory more =
        [gpu, planPath, options = cuda.device](const Plan &p)
        -> io::Expected<std::unique_ptr<exec::Device>> {
      io::Expected<std::unique_ptr<cuda::CudaDriver>> driver =
          cuda::CudaDriver::open(gpu);
      if (!driver)
        return driver.error();
      io::Expected<std::unique_ptr<cuda::CudaDevice>> another =
          cuda::CudaDevice::create(p, planPath, std::move(*driver), options);
      if (!another)
        return another.error();
      return std::unique_ptr<exec::Device>(std::move(*another));
    };
    if (world.rank() == 0)
      std::printf("dsflow-run: %s, a %.1f MiB arena per micro-batch in "
                  "flight\n",
                  (*device)->name().c_str(),
                  (*device)->arenaBytes() / 1048576.0);
    return executor.offloadTo(std::move(*device), false, more);
  }
  if (experts) {
    if (world.rank() == 0)
      std::printf("dsflow-run: %s, a %.1f MiB arena; the routed experts and "
                  "the training state on the host (expert parallelism)\n",
                  (*device)->name().c_str(),
                  (*device)->arenaBytes() / 1048576.0);
    return executor.offloadTo(std::move(*device), false);
  }
  if (io::Status e = (*device)->joinRanks(world))
    return e;
  if (world.rank() == 0)
    std::printf("dsflow-run: %s, a %.1f MiB arena%s\n",
                (*device)->name().c_str(), (*device)->arenaBytes() / 1048576.0,
                world.size() > 1 ? ", gradients summed by NCCL" : "");
  return executor.offloadTo(std::move(*device), !cuda.hostOptimizer);
#else
  (void)executor, (void)planPath, (void)cuda, (void)world;
  return io::makeError("--device cuda",
                       "this dsflow was built without the CUDA toolkit");
#endif
}

/// Every other kernel, or with `all` every kernel, on a mirror device
/// (--device cpu-mirror, cpu-mirror-all).
io::Status offloadToMirror(exec::Executor &executor, bool all) {
  // The mirrors of a pipeline's further micro-batches hold the same
  // buffers as this executor's.
  exec::Executor::DeviceFactory mirror =
      [&executor, all](const Plan &)
      -> io::Expected<std::unique_ptr<exec::Device>> {
    io::Expected<std::unique_ptr<exec::MirrorDevice>> d =
        exec::MirrorDevice::of(executor,
                               [all](int32_t k) { return all || k % 2 == 1; });
    if (!d)
      return d.error();
    return std::unique_ptr<exec::Device>(std::move(*d));
  };
  io::Expected<std::unique_ptr<exec::Device>> device = mirror(executor.plan());
  if (!device)
    return device.error();
  return executor.offloadTo(std::move(*device), false, mirror);
}

/// "cuda: 259 of 397 kernels ran on the device; 12.0 MiB up, 3.0 MiB down".
/// `c`: the counts of every device of this process (a pipeline rank has
/// one per micro-batch in flight); `rank`: "rank N: " with several.
void printOffload(const exec::Offload &offload, const exec::OffloadCounts &c,
                  const std::string &rank) {
  std::printf("%s%s: %lld of %lld kernel runs on the device; %.1f MiB copied "
              "to it, %.1f MiB back\n",
              rank.c_str(), offload.device().name().c_str(),
              (long long)c.deviceKernels,
              (long long)(c.deviceKernels + c.hostKernels),
              c.uploadedBytes / 1048576.0, c.downloadedBytes / 1048576.0);
  if (int64_t buckets = offload.bucketsLastSummed())
    std::printf("%s%s: gradients summed over the ranks in %lld buckets, "
                "each as the backward finished it\n",
                rank.c_str(), offload.device().name().c_str(),
                (long long)buckets);
#ifdef DSFLOW_WITH_CUDA_DEVICE
  auto *gpu = dynamic_cast<const cuda::CudaDevice *>(&offload.device());
  if (gpu && (gpu->fp8TensorCoreGemms() || gpu->fp8GemmsEmulated()))
    std::printf("%scuda: FP8 recipe: %lld GEMMs on the FP8 tensor cores "
                "(%lld reading activations their RMSNorm quantized), %lld "
                "emulated\n",
                rank.c_str(), (long long)gpu->fp8TensorCoreGemms(),
                (long long)gpu->fp8FusedActivations(),
                (long long)gpu->fp8GemmsEmulated());
#endif
}

/// Trains on this process's part of the job.
int runJob(const std::string &planPath, const train::TrainOptions &options,
           bool printMemory, bool profile, const CudaOptions &cuda,
           dist::Communicator &world) {
  io::Expected<Plan> plan = readPlanFile(planPath);
  if (!plan)
    return failJob(world, plan.error().message);
  // Every rank must run the same plan (the same file bytes).
  io::Expected<std::vector<uint8_t>> planBytes = io::readWholeFile(planPath);
  if (!planBytes)
    return failJob(world, planBytes.error().message);
  if (io::Status e = dist::checkSamePlan(
          world, io::fnv1a64(planBytes->data(), planBytes->size())))
    return failJob(world, e->message);
  // Under expert parallelism, ep consecutive ranks share the routed experts.
  int ep = plan->has_cluster() ? std::max(1, plan->cluster().ep()) : 1;
  std::unique_ptr<dist::Communicator> epGroup;
  std::unique_ptr<exec::ExpertParallel> expertParallel;
  if (ep > 1 && world.size() % ep == 0) {
    auto group = world.split(world.rank() / ep, world.rank() % ep);
    if (!group)
      return failJob(world, group.error().message);
    epGroup = std::move(*group);
    expertParallel = std::make_unique<exec::ExpertParallel>(*epGroup);
  }
  // Under pipeline parallelism a rank allocates only its stages' parameters
  // (unless a parameter is read on several stages: then everyone has all).
  std::function<bool(int32_t)> otherStage;
  int pp = plan->has_cluster() ? std::max(1, plan->cluster().pp()) : 1;
  if (pp > 1 && plan->has_pipeline() && world.size() % pp == 0) {
    io::Expected<stages::KernelStages> split =
        stages::assignKernelStages(*plan);
    if (!split)
      return failJob(world, split.error().message);
    auto holders = train::PipelineRunner::stageHolders(*plan);
    if (!holders)
      return failJob(world, holders.error().message);
    std::set<int> mine = holders->held[world.rank() / (world.size() / pp)];
    const Plan &p = *plan;
    if (split->sharedParameters.empty())
      otherStage = [mine, &p](int32_t b) {
        return !mine.count(
            stages::stageOfTensor(p.pipeline(), p.buffers(b).name()));
      };
  }
  io::Expected<std::unique_ptr<exec::Executor>> executor =
      exec::Executor::create(*plan, planPath, expertParallel.get(),
                             otherStage);
  if (!executor)
    return failJob(world, executor.error().message);
  (*executor)->setProfiling(profile);
  if (cuda.on)
    if (io::Status e = offloadToCuda(**executor, planPath, cuda, world))
      return failJob(world, e->message);
  if (cuda.mirror)
    if (io::Status e = offloadToMirror(**executor, cuda.mirrorAll))
      return failJob(world, e->message);
  io::Expected<std::unique_ptr<train::Trainer>> trainer =
      train::Trainer::create(**executor, options, world);
  if (!trainer)
    return failJob(world, trainer.error().message);

  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
  const TrainingConfig &t = plan->training();
  bool leader = world.rank() == 0;
  if (leader)
    std::printf("dsflow-run: %s, %lld x %lld x %lld tokens a step, data %s\n",
              plan->model().name().c_str(), (long long)t.micro_batches(),
              (long long)t.micro_batch(), (long long)t.seq_len(),
              options.dataPath.c_str());
  std::fflush(stdout);
  io::Expected<train::TrainSummary> summary = (*trainer)->run(stopRequested, stdout);
  if (!summary)
    return failJob(world, summary.error().message);
  const train::TrainSummary &s = *summary;
  if (leader)
    std::printf("%s after step %lld: loss %.4f (LM %.4f)%s; %lld tokens in %.1f s "
              "(%.0f tok/s)%s\n",
              s.interrupted ? "interrupted" : "done", (long long)s.lastStep,
              s.finalLoss, s.finalLmLoss,
              s.finalValLoss ? (", validation " + std::to_string(*s.finalValLoss)).c_str() : "",
              (long long)s.tokens, s.seconds,
              s.tokens / std::max(s.seconds, 1e-9),
              options.checkpointDir.empty()
                  ? ""
                  : ("; checkpoint in " + options.checkpointDir).c_str());
  if (printMemory && leader) {
    std::printf("activation arena: measured peak %lld bytes, planned %lld bytes\n",
                (long long)(*executor)->activationHighWater(),
                (long long)plan->memory().activation_bytes());
    // Under expert parallelism a rank holds only its routed experts.
    const exec::Memory &memory = (*executor)->memory();
    std::printf("parameters + gradients on rank 0: %lld bytes (all of the "
                "plan's: %lld bytes)\n",
                (long long)(memory.parameterBytes() + memory.gradientBytes()),
                (long long)(plan->memory().parameter_bytes() +
                            plan->memory().gradient_bytes()));
    if (int64_t copies = (*executor)->fp8WeightCopyBytes())
      std::printf("FP8 weight copies (E4M3 round trips) on rank 0: %lld "
                  "bytes\n",
                  (long long)copies);
  }
  if (profile && leader)
    (*executor)->printProfile(stdout);
  const train::PipelineRunner *pipeline = (*trainer)->pipelineRunner();
  if (const exec::Offload *offload = (*executor)->offloading())
    printOffload(*offload,
                 pipeline ? pipeline->offloadCounts() : offload->counts(),
                 world.size() > 1 ? "rank " + std::to_string(world.rank()) + ": "
                                  : "");
  if (leader && pipeline && pipeline->pairCounts().overlapped > 0) {
    const train::PipelineRunner::PairCounts &pairs = pipeline->pairCounts();
    std::printf("pipeline rank 0: %lld forward-backward pairs overlapped on "
                "the device, %lld with no wait for the device between "
                "their launches; the launches switched chunks at %lld "
                "waits\n",
                (long long)pairs.overlapped, (long long)pairs.withoutWaits,
                (long long)pairs.interleavedWaits);
  }
  return s.interrupted ? 130 : 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::string planPath;
  train::TrainOptions options;
  options.steps = -1;
  bool printMemory = false, profile = false;
  CudaOptions cuda;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char *&out) {
      if (i + 1 >= argc)
        return false;
      out = argv[++i];
      return true;
    };
    const char *v = nullptr;
    bool ok = true;
    if (arg == "--data") {
      ok = value(v) && (options.dataPath = v, true);
    } else if (arg == "--format") {
      std::optional<io::TokenFormat> f;
      ok = value(v) && (f = io::parseTokenFormat(v)).has_value();
      if (ok)
        options.format = *f;
    } else if (arg == "--steps") {
      ok = value(v) && parseInt(v, options.steps) && options.steps > 0;
    } else if (arg == "--val-fraction") {
      ok = value(v) && parseDouble(v, options.valFraction) &&
           options.valFraction >= 0 && options.valFraction < 1;
    } else if (arg == "--log-interval") {
      ok = value(v) && parseInt(v, options.logInterval) &&
           options.logInterval > 0;
    } else if (arg == "--eval-interval") {
      ok = value(v) && parseInt(v, options.evalInterval) &&
           options.evalInterval >= 0;
    } else if (arg == "--eval-batches") {
      ok = value(v) && parseInt(v, options.evalBatches) &&
           options.evalBatches > 0;
    } else if (arg == "--checkpoint-dir") {
      ok = value(v) && (options.checkpointDir = v, true);
    } else if (arg == "--checkpoint-interval") {
      ok = value(v) && parseInt(v, options.checkpointInterval) &&
           options.checkpointInterval >= 0;
    } else if (arg == "--resume") {
      options.resume = true;
    } else if (arg == "--loss-log") {
      ok = value(v) && (options.lossLog = v, true);
    } else if (arg == "--init-std") {
      ok = value(v) && parseDouble(v, options.initStd) && options.initStd > 0;
    } else if (arg == "--seed") {
      int64_t seed = -1;
      ok = value(v) && parseInt(v, seed) && seed >= 0;
      if (ok)
        options.seed = uint64_t(seed);
    } else if (arg == "--dump-step") {
      ok = value(v) && (options.dumpStep = v, true);
    } else if (arg == "--trace") {
      ok = value(v) && (options.tracePath = v, true);
    } else if (arg == "--trace-steps") {
      ok = value(v) && parseInt(v, options.traceSteps) &&
           options.traceSteps > 0;
    } else if (arg == "--save-params") {
      ok = value(v) && (options.saveParams = v, true);
    } else if (arg == "--expert-loads") {
      ok = value(v) && (options.expertLoads = v, true);
    } else if (arg == "--profile") {
      profile = true;
    } else if (arg == "--device") {
      ok = value(v) && (!std::strcmp(v, "cpu") || !std::strcmp(v, "cuda") ||
                        !std::strcmp(v, "cpu-mirror") ||
                        !std::strcmp(v, "cpu-mirror-all"));
      cuda.on = ok && !std::strcmp(v, "cuda");
      cuda.mirrorAll = ok && !std::strcmp(v, "cpu-mirror-all");
      cuda.mirror = ok && (cuda.mirrorAll || !std::strcmp(v, "cpu-mirror"));
    } else if (arg == "--host-optimizer") {
      cuda.hostOptimizer = true;
    } else if (arg == "--tf32" || arg == "--bf16-gemms") {
      if (!cuda.gemmFlag.empty() && cuda.gemmFlag != arg)
        return fail("--tf32 and --bf16-gemms exclude each other");
      cuda.gemmFlag = arg;
#ifdef DSFLOW_WITH_CUDA_DEVICE
      cuda.device.gemms = arg == "--tf32" ? cuda::Fp32Gemms::Tf32
                                          : cuda::Fp32Gemms::Bf16;
#endif
    } else if (arg == "--emulate-fp8") {
      cuda.emulateFp8 = true;
#ifdef DSFLOW_WITH_CUDA_DEVICE
      cuda.device.fp8TensorCores = false;
#endif
    } else if (arg == "--print-memory") {
      printMemory = true;
    } else if (arg[0] != '-' && planPath.empty()) {
      planPath = arg;
    } else {
      return fail("unknown argument '" + arg + "' (see --help)");
    }
    if (!ok)
      return fail("bad or missing value for " + arg + (v ? std::string(" '") + v + "'" : ""));
  }
  if (planPath.empty())
    return fail("no plan given (see --help)");
  if (options.dataPath.empty())
    return fail("--data is required");
  if (options.steps <= 0)
    return fail("--steps is required");
  if (options.resume && options.checkpointDir.empty())
    return fail("--resume needs --checkpoint-dir");
  if (options.evalInterval > 0 && options.valFraction == 0)
    return fail("--eval-interval needs a validation split (--val-fraction > 0)");

  io::Expected<std::unique_ptr<dist::Communicator>> world =
      dist::initCommunicator(&argc, &argv);
  if (!world)
    return fail(world.error().message);
  if ((cuda.hostOptimizer || cuda.emulateFp8 || !cuda.gemmFlag.empty()) &&
      !cuda.on)
    return fail((!cuda.gemmFlag.empty() ? cuda.gemmFlag
                 : cuda.emulateFp8      ? std::string("--emulate-fp8")
                                        : std::string("--host-optimizer")) +
                " needs --device cuda");
  int code = runJob(planPath, options, printMemory, profile, cuda, **world);
  world->reset();
  if (io::Status e = dist::finalizeCommunicator())
    return fail(e->message);
  return code;
}
