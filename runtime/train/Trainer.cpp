//===- Trainer.cpp - The training loop ------------------------------------===//
#include "train/Trainer.h"
#include "plan/PlanFile.h"

#include "exec/ExpertSlots.h"
#include "plan/KernelStages.h"

#include "train/LossLog.h"
#include "train/LrSchedule.h"
#include "train/ParamInit.h"
#include "train/StepDump.h"

#include "io/AtomicFile.h"
#include "io/ExpertLoads.h"
#include "io/SafetensorsWriter.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <numeric>

namespace dsflow::train {
namespace {

/// Data parallelism on GPUs sums the gradients in buckets of about this
/// many bytes, each as the backward is done with it (PyTorch DDP's default
/// size: big enough for NCCL's bandwidth, small enough to overlap).
constexpr int64_t kGradientBucketBytes = 25 << 20;

std::string duration(double seconds) {
  char text[32];
  long s = std::lround(seconds);
  if (s >= 3600)
    std::snprintf(text, sizeof(text), "%ldh%02ldm", s / 3600, s / 60 % 60);
  else
    std::snprintf(text, sizeof(text), "%ldm%02lds", s / 60, s % 60);
  return text;
}

/// The parameters this rank holds as checkpoint tensors (pointing into the
/// executor's memory).
std::vector<io::TensorRef> parameterTensors(exec::Memory &memory) {
  std::vector<io::TensorRef> tensors;
  const Plan &plan = memory.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() != PARAMETER || !memory.present(i))
      continue;
    io::TensorRef ref;
    ref.name = b.name();
    ref.dtype = io::DType::F32;
    ref.shape.assign(b.shape().begin(), b.shape().end());
    ref.data = memory.data(i);
    ref.byteSize = static_cast<uint64_t>(b.bytes());
    tensors.push_back(std::move(ref));
  }
  return tensors;
}

/// Where rank `rank` of `ranks` keeps its checkpoints under `dir`.
std::string rankCheckpointDir(const std::string &dir, int rank, int ranks) {
  if (ranks == 1 || dir.empty())
    return dir;
  char name[32];
  std::snprintf(name, sizeof(name), "/rank-%05d", rank);
  return dir + name;
}

} // namespace

/// Per buffer, the gradient buffer of the parameter it is (-1: none).
static std::vector<int32_t> gradientsOf(const Plan &plan) {
  std::vector<int32_t> out(plan.buffers_size(), -1);
  for (int32_t b = 0; b < plan.buffers_size(); ++b)
    if (plan.buffers(b).kind() == GRADIENT)
      out[plan.buffers(b).gradient_of()] = b;
  return out;
}

/// Whether the plan asks for ZeRO-1 (a plan without a cluster runs alone).
static bool zero1(const Plan &plan) {
  return !plan.has_cluster() || plan.cluster().zero1();
}

Trainer::Trainer(exec::Executor &executor, const TrainOptions &options,
                 dist::Communicator &world, ExpertSharding expertSharding,
                 std::unique_ptr<dist::Communicator> expertReplicas,
                 std::optional<PipelineRunner::StageHolders> stageHolders,
                 std::vector<StageGroup> stageComms)
    : executor(executor), options(options), world(world),
      checkpointDir(
          rankCheckpointDir(options.checkpointDir, world.rank(), world.size())),
      sharding(std::move(expertSharding)),
      expertGroup(std::move(expertReplicas)), stages(std::move(stageHolders)),
      gradientOf(gradientsOf(executor.plan())),
      // Without stages: every tensor but the routed experts', over the
      // world. With stages: the replicated experts', over the world with
      // zeros from the ranks without them, applied by every holder (the rest
      // go to their stage's groups below).
      dataParallel(executor.plan(), world, zero1(executor.plan()) && !stages,
                   [this](int32_t grad) {
                     return stages ? sharding.replicated(grad) : !routed(grad);
                   }),
      stageGroups(std::move(stageComms)), stageData(stageDataParallel()),
      expertData(expertGroup ? std::make_unique<DataParallel>(
                                   executor.plan(), *expertGroup,
                                   zero1(executor.plan()),
                                   [this](int32_t grad) {
                                     return sharding.sharded(grad) &&
                                            sharding.holds(grad);
                                   })
                             : nullptr),
      replicatedExperts(
          expertGroup
              ? std::make_unique<DataParallel>(
                    executor.plan(), world, /*zero1=*/false,
                    [this](int32_t grad) { return sharding.replicated(grad); })
              : nullptr),
      // With the state on a device every rank updates every tensor (the
      // gradients are summed there, not sharded).
      optimizer(executor.plan(), executor.plan().training().bf16_moments(),
                [this](int32_t grad) {
                  return this->executor.deviceOptimizer() || updates(grad);
                }),
      balance(executor.plan()) {}

std::vector<DataParallel *> Trainer::otherGroups() const {
  std::vector<DataParallel *> groups;
  for (DataParallel *g : {expertData.get(), replicatedExperts.get()})
    if (g)
      groups.push_back(g);
  for (const std::unique_ptr<DataParallel> &g : stageData)
    groups.push_back(g.get());
  return groups;
}

int Trainer::holderOf(int32_t param) const {
  const Plan &plan = executor.plan();
  // The world rank in pipeline rank 0 and DP replica 0 with the EP rank.
  int32_t grad = gradientOf[param];
  int ep = grad >= 0 ? sharding.firstHolder(grad) : 0;
  if (!stages)
    return ep;
  int stage =
      stages::stageOfTensor(plan.pipeline(), plan.buffers(param).name());
  return stages->first[stage] * (world.size() / plan.cluster().pp()) + ep;
}

bool Trainer::routed(int32_t grad) const {
  return sharding.sharded(grad) || sharding.replicated(grad);
}

int Trainer::stageOf(int32_t grad) const {
  const Plan &plan = executor.plan();
  return stages::stageOfTensor(
      plan.pipeline(), plan.buffers(plan.buffers(grad).gradient_of()).name());
}

std::vector<std::unique_ptr<DataParallel>> Trainer::stageDataParallel() {
  std::vector<std::unique_ptr<DataParallel>> out;
  for (const StageGroup &g : stageGroups) {
    // A stage's group holds its dense tensors; with EP, the group of the
    // stage's ranks with this EP rank holds the experts they share.
    int stage = g.stage;
    bool experts = g.experts;
    out.push_back(std::make_unique<DataParallel>(
        executor.plan(), *g.ranks, zero1(executor.plan()),
        [this, stage, experts](int32_t grad) {
          bool mine = experts ? sharding.sharded(grad) && sharding.holds(grad)
                              : !routed(grad);
          return mine && stageOf(grad) == stage;
        }));
  }
  return out;
}

const DataParallel *Trainer::stageGroupOf(int32_t grad) const {
  int stage = stageOf(grad);
  bool experts = sharding.sharded(grad);
  for (size_t j = 0; j < stageGroups.size(); ++j)
    if (stageGroups[j].stage == stage && stageGroups[j].experts == experts)
      return stageData[j].get();
  return nullptr;
}

bool Trainer::updates(int32_t grad) const {
  bool present =
      executor.memory().present(executor.plan().buffers(grad).gradient_of());
  if (stages && sharding.replicated(grad)) // Every holder, the same sum.
    return present;
  if (stages) { // A member of the tensor's stage group (it holds it).
    const DataParallel *group = stageGroupOf(grad);
    return present && group && group->updates(grad);
  }
  if (sharding.replicated(grad))
    return sharding.holds(grad); // Every holder, from the same sum.
  if (sharding.sharded(grad))
    return sharding.holds(grad) && expertData->updates(grad);
  return dataParallel.updates(grad);
}

bool Trainer::owns(int32_t grad) const {
  if (stages && sharding.replicated(grad))
    return holderOf(executor.plan().buffers(grad).gradient_of()) ==
           world.rank();
  if (stages) {
    const DataParallel *group = stageGroupOf(grad);
    return executor.memory().present(
               executor.plan().buffers(grad).gradient_of()) &&
           group && group->owns(grad);
  }
  if (sharding.replicated(grad))
    return sharding.countsReplicated(grad);
  if (sharding.sharded(grad))
    return sharding.holds(grad) && expertData->owns(grad);
  return dataParallel.owns(grad);
}

io::Expected<std::unique_ptr<Trainer>>
Trainer::create(exec::Executor &executor, const TrainOptions &options,
                dist::Communicator &world) {
  if (executor.isDouble())
    return io::makeError(options.dataPath,
                         "training runs FP32 plans; this plan is FP64");
  const Plan &plan = executor.plan();
  int64_t planRanks = plan.has_cluster() ? int64_t(plan.cluster().nodes()) *
                                               plan.cluster().ranks_per_node()
                                         : 1;
  if (planRanks != world.size())
    return io::makeError("plan", "compiled for " + std::to_string(planRanks) +
                                     " ranks, but the job has " +
                                     std::to_string(world.size()));
  bool pipelined = plan.has_cluster() && plan.cluster().pp() > 1;
  if (pipelined && !world.pointToPoint())
    return io::makeError("plan", std::string("pipeline stages exchange "
                                             "point-to-point messages, which "
                                             "the ") +
                                     world.transport() +
                                     " transport does not carry");
  io::Expected<ExpertSharding> sharding =
      ExpertSharding::create(plan, world.rank());
  if (!sharding)
    return sharding.error();
  if (executor.expertParallelRanks() != sharding->epRanks())
    return io::makeError("plan",
                         "compiled for " + std::to_string(sharding->epRanks()) +
                             " EP ranks, but the executor runs the "
                             "experts on " +
                             std::to_string(executor.expertParallelRanks()));
  // The ranks with this rank's EP rank hold the same experts.
  std::optional<PipelineRunner::StageHolders> holders;
  if (pipelined) {
    auto h = PipelineRunner::stageHolders(plan);
    if (!h)
      return h.error();
    holders = std::move(*h);
  }
  // Under pipeline parallelism the ranks holding a stage reduce (and, with
  // ZeRO-1, shard) its dense tensors: one group per stage this rank holds,
  // made by as many splits as any rank holds stages.
  std::vector<StageGroup> stageGroups;
  if (holders) {
    size_t most = 0;
    for (const std::set<int> &held : holders->held)
      most = std::max(most, held.size());
    int inner = world.size() / plan.cluster().pp();
    const std::set<int> &held = holders->held[world.rank() / inner];
    std::vector<int> mine(held.begin(), held.end());
    int stageCount = plan.pipeline().stages_size();
    int ep = sharding->epRanks();
    for (bool experts : {false, true}) {
      if (experts && ep == 1)
        break;
      for (size_t j = 0; j < most; ++j) {
        // Dense: every rank of the stage; experts: those with this EP rank.
        int color = j >= mine.size() ? 2 * stageCount * ep + world.rank()
                    : experts ? stageCount + mine[j] * ep + sharding->epRank()
                              : mine[j];
        auto group = world.split(color, world.rank());
        if (!group)
          return group.error();
        if (j < mine.size())
          stageGroups.push_back({mine[j], experts, std::move(*group)});
      }
    }
  }
  std::unique_ptr<dist::Communicator> expertGroup;
  if (sharding->epRanks() > 1 && !pipelined) {
    auto group = world.split(sharding->epRank(), sharding->dpIndex());
    if (!group)
      return group.error();
    expertGroup = std::move(*group);
  }
  std::unique_ptr<Trainer> t(new Trainer(
      executor, options, world, std::move(*sharding), std::move(expertGroup),
      std::move(holders), std::move(stageGroups)));
  if (pipelined) {
    auto pipeline = PipelineRunner::create(executor, world);
    if (!pipeline)
      return pipeline.error();
    t->pipeline = std::move(*pipeline);
  }
  io::Expected<io::TokenData> data = io::TokenData::load(
      options.dataPath, {options.format, plan.model().vocab_size()});
  if (!data)
    return data.error();
  t->data = std::make_unique<io::TokenData>(std::move(*data));
  int64_t rows = plan.training().micro_batch();
  int64_t window = executor.tokenCount() / rows;
  io::Expected<io::DataSplit> split =
      io::splitTokens(*t->data, options.valFraction, window);
  if (!split)
    return split.error();
  t->split = *split;
  // Every rank draws the global batch and keeps its own rows.
  uint64_t seed = options.seed.value_or(plan.training().seed());
  io::Expected<io::BatchSampler> sampler = io::BatchSampler::create(
      *t->data, t->split.train, rows * t->dataRanks(), window, seed);
  if (!sampler)
    return sampler.error();
  t->sampler = std::make_unique<io::BatchSampler>(std::move(*sampler));

  const std::string &dir = t->checkpointDir;
  if (!options.resume && !dir.empty() && io::hasCheckpoint(dir))
    return io::makeError(dir,
                         "already holds checkpoints: pass --resume to continue "
                         "from the latest, or choose another directory");
  initializeParameters(executor.memory(), seed, options.initStd);
  bool resumed = false;
  if (options.resume && !dir.empty()) {
    io::Expected<std::optional<io::Checkpoint>> checkpoint =
        t->loadCommonCheckpoint();
    if (!checkpoint)
      return checkpoint.error();
    if (*checkpoint) {
      if (io::Status e = t->resumeFrom(**checkpoint))
        return *e;
      resumed = true;
      if (t->startStep >= options.steps)
        return io::makeError((*checkpoint)->path,
                             "the checkpoint is at step " +
                                 std::to_string(t->startStep) + "; --steps " +
                                 std::to_string(options.steps) +
                                 " would train nothing");
    }
  }
  // A device that keeps the training state starts from the host's.
  executor.parametersWrittenOnHost();
  if (exec::DeviceOptimizer *device = executor.deviceOptimizer()) {
    if (t->pipeline || t->expertGroup || t->stages)
      return io::makeError(options.dataPath,
                           "the training state on a device: data parallelism "
                           "only (no pipeline stages or expert parallelism)");
    if (io::Status e = t->optimizer.prepareDevice(*device, resumed))
      return *e;
  }
  return t;
}

io::Status Trainer::resumeFrom(const io::Checkpoint &checkpoint) {
  exec::Memory &memory = executor.memory();
  const Plan &plan = executor.plan();
  for (int32_t i = 0; i < plan.buffers_size(); ++i) {
    const Buffer &b = plan.buffers(i);
    if (b.kind() != PARAMETER || !memory.present(i))
      continue;
    io::Expected<std::vector<float>> values = checkpoint.model.read<float>(
        b.name(), io::Shape(b.shape().begin(), b.shape().end()));
    if (!values)
      return values.error();
    std::memcpy(memory.data(i), values->data(), static_cast<size_t>(b.bytes()));
  }
  if (io::Status e = optimizer.loadState(checkpoint.optimizer))
    return e;
  if (io::Status e = sampler->restoreState(checkpoint.resume.dataPosition))
    return io::makeError(checkpoint.path, e->message);
  startStep = checkpoint.step;
  return std::nullopt;
}

io::Expected<std::optional<io::Checkpoint>> Trainer::loadCommonCheckpoint() {
  if (world.size() > 1 &&
      std::filesystem::exists(rankCheckpointDir(
          options.checkpointDir, world.size(), world.size() + 1)))
    return io::makeError(options.checkpointDir,
                         "was written by a job with more than " +
                             std::to_string(world.size()) + " ranks");
  std::optional<io::Checkpoint> latest;
  if (io::hasCheckpoint(checkpointDir)) {
    io::Expected<io::Checkpoint> loaded =
        io::loadLatestCheckpoint(checkpointDir);
    if (!loaded)
      return loaded.error();
    latest = std::move(*loaded);
  }
  if (world.size() == 1)
    return latest;
  // Every rank resumes from the same step: the newest all of them saved (a
  // job stopped during a save may have left some ranks one checkpoint ahead).
  std::vector<int64_t> steps(world.size());
  int64_t mine = latest ? latest->step : -1;
  if (io::Status e = world.allGatherBytes(
          &mine, steps.data(),
          std::vector<int64_t>(world.size(), sizeof(int64_t))))
    return *e;
  int64_t common = *std::min_element(steps.begin(), steps.end());
  int64_t newest = *std::max_element(steps.begin(), steps.end());
  if (common < 0 && newest >= 0)
    return io::makeError(checkpointDir,
                         "has no checkpoint while other ranks have (a job "
                         "with fewer ranks wrote them?)");
  if (!latest || latest->step == common)
    return latest;
  io::Expected<io::Checkpoint> older =
      io::loadCheckpoint(checkpointDir + "/" + io::checkpointDirName(common));
  if (!older)
    return older.error();
  if (io::Status e = io::rewindCheckpoint(checkpointDir, common))
    return *e;
  return std::optional<io::Checkpoint>(std::move(*older));
}

io::Status Trainer::saveCheckpoint(int64_t step) {
  if (io::Status e = executor.parametersToHost())
    return e;
  if (exec::DeviceOptimizer *device = executor.deviceOptimizer())
    if (io::Status e = optimizer.momentsFromDevice(*device))
      return e;
  io::ResumeState resume{sampler->saveState(), ""};
  return io::saveCheckpoint(checkpointDir, step,
                            parameterTensors(executor.memory()),
                            optimizer.stateTensors(), resume);
}

void Trainer::setTrace(std::vector<exec::KernelEvent> *events) {
  executor.setTrace(events);
  for (int mb = 0; pipeline && mb < pipeline->microBatches(); ++mb)
    for (exec::Executor *e : pipeline->executorsOf(mb))
      e->setTrace(events);
}

int Trainer::dataRanks() const {
  return pipeline ? pipeline->dataParallelRanks() : world.size();
}

void Trainer::feed(const std::vector<int32_t> &globalBatch,
                   exec::Executor &into) {
  int64_t count = into.tokenCount();
  int index = pipeline ? pipeline->dataParallelIndex() : world.rank();
  std::memcpy(into.tokens(), globalBatch.data() + index * count,
              size_t(count) * sizeof(int32_t));
}

io::Status Trainer::averageOverRanks(double *values, int64_t count) {
  if (world.size() == 1)
    return std::nullopt;
  if (io::Status e = world.allReduceSum(values, count))
    return e;
  // Under pipeline parallelism only the ranks of the last stage have losses.
  for (int64_t i = 0; i < count; ++i)
    values[i] /= double(dataRanks());
  return std::nullopt;
}

io::Status Trainer::trainStep(int64_t step, double &loss, double &lmLoss,
                              double &mtpLoss) {
  const TrainingConfig &t = executor.plan().training();
  exec::Memory &memory = executor.memory();
  exec::DeviceOptimizer *device = executor.deviceOptimizer();
  if (io::Status e = executor.zeroGradients())
    return e;
  loss = lmLoss = mtpLoss = 0;
  int64_t microBatches = t.micro_batches();
  bool hasMtp = executor.plan().losses_size() > 2;
  auto addLosses = [&](const exec::Executor &e) {
    loss += e.loss(0) / double(microBatches);
    lmLoss += e.loss(1) / double(microBatches);
    if (hasMtp)
      mtpLoss += e.loss(2) / double(microBatches);
  };
  if (pipeline) {
    // Every micro-batch's tokens, then this rank's stream of the schedule.
    for (int mb = 0; mb < pipeline->microBatches(); ++mb) {
      sampler->next(batch);
      for (exec::Executor *e : pipeline->executorsOf(mb))
        feed(batch, *e);
    }
    if (io::Status e = pipeline->runStep())
      return e;
    for (int mb = 0; mb < pipeline->microBatches(); ++mb) {
      for (exec::Executor *e : pipeline->executorsOf(mb))
        if (io::Status status = balance.accumulate(e->memory()))
          return status;
      if (exec::Executor *e = pipeline->lossExecutor(mb))
        addLosses(*e);
    }
  }
  for (int64_t mb = 0; !pipeline && mb < microBatches; ++mb) {
    sampler->next(batch);
    feed(batch, executor);
    if (device && mb == microBatches - 1)
      executor.overlapGradientReduction(kGradientBucketBytes);
    if (io::Status e = executor.runMicroBatch())
      return e;
    if (io::Status e = balance.accumulate(memory))
      return e;
    addLosses(executor);
  }
  double losses[3] = {loss, lmLoss, mtpLoss};
  if (io::Status e = averageOverRanks(losses, 3))
    return e;
  loss = losses[0], lmLoss = losses[1], mtpLoss = losses[2];
  if (!std::isfinite(loss))
    return io::makeError(options.dataPath,
                         "the loss became " + std::to_string(loss) +
                             " at step " + std::to_string(step));
  if (device) { // Summed on the devices (NCCL), every rank the whole sum.
    if (io::Status e = device->reduceGradients())
      return e;
  } else {
    if (io::Status e = dataParallel.reduceGradients(memory))
      return e;
    for (DataParallel *group : otherGroups())
      if (io::Status e = group->reduceGradients(memory))
        return e;
  }
  if (io::Status e = balance.sumOver(world))
    return e;
  // Mean over micro-batches and ranks, then clip the global norm.
  double gradScale = 1.0 / double(microBatches * dataRanks());
  double squares = 0;
  if (device) { // Every rank holds the whole sum already.
    io::Expected<double> sum = device->squaredGradientSum();
    if (!sum)
      return sum.error();
    squares = *sum;
  } else {
    squares = optimizer.squaredGradientSum(
        memory, [this](int32_t grad) { return owns(grad); });
    if (io::Status e = world.allReduceSum(&squares, 1))
      return e;
  }
  double norm = std::sqrt(squares) * gradScale;
  if (t.grad_clip() > 0 && norm > t.grad_clip())
    gradScale *= t.grad_clip() / (norm + 1e-6);
  lastLr = learningRate(t, step);
  lastGradScale = gradScale;
  std::unique_ptr<StepDump> dump;
  if (!options.dumpStep.empty() && step == startStep) {
    if (io::Status e = executor.parametersToHost())
      return e;
    dump = std::make_unique<StepDump>(executor, batch);
  }
  if (device) {
    if (io::Status e = optimizer.step(*device, lastLr, gradScale))
      return e;
  } else {
    optimizer.step(memory, lastLr, gradScale);
  }
  if (!device) {
    if (io::Status e = dataParallel.gatherParameters(memory))
      return e;
    for (DataParallel *group : otherGroups())
      if (io::Status e = group->gatherParameters(memory))
        return e;
  }
  balance.updateBiases(memory, t.bias_update_speed());
  const std::vector<std::vector<int64_t>> &loads = balance.lastLoads();
  loadTotals.resize(loads.size());
  for (size_t l = 0; l < loads.size(); ++l) {
    loadTotals[l].resize(loads[l].size(), 0);
    for (size_t e = 0; e < loads[l].size(); ++e)
      loadTotals[l][e] += loads[l][e];
  }
  if (dump) {
    if (io::Status e = executor.parametersToHost())
      return e;
    return dump->finish(options.dumpStep, lastLr, gradScale, balance);
  }
  return std::nullopt;
}

io::Status Trainer::writeTrace() {
  std::string mine = exec::chromeTraceEvents(traceEvents, world.rank());
  traceEvents.clear();
  int64_t size = int64_t(mine.size());
  std::vector<int64_t> sizes(world.size());
  if (io::Status e = world.allGatherBytes(
          &size, sizes.data(),
          std::vector<int64_t>(world.size(), sizeof(int64_t))))
    return e;
  std::string all(
      size_t(std::accumulate(sizes.begin(), sizes.end(), int64_t(0))), '\0');
  if (io::Status e = world.allGatherBytes(mine.data(), all.data(), sizes))
    return e;
  if (world.rank() != 0)
    return std::nullopt;
  // Join the ranks' lists (each may be empty) with commas.
  std::string events;
  int64_t at = 0;
  for (int64_t n : sizes) {
    if (n > 0)
      events +=
          (events.empty() ? "" : ",\n") + all.substr(size_t(at), size_t(n));
    at += n;
  }
  return io::writeFileAtomically(options.tracePath,
                                 "{\"traceEvents\": [\n" + events +
                                     "\n], \"displayTimeUnit\": \"ms\"}\n");
}

io::Status Trainer::gatherToRankZero(std::vector<std::vector<float>> &storage,
                                     std::vector<io::TensorRef> &tensors) {
  exec::Memory &memory = executor.memory();
  const Plan &plan = memory.plan();
  for (int32_t param = 0; param < plan.buffers_size(); ++param) {
    if (plan.buffers(param).kind() != PARAMETER)
      continue;
    int holder = holderOf(param);
    if (holder == 0)
      continue; // World rank 0 holds it.
    const Buffer &b = plan.buffers(param);
    std::vector<float> values(size_t(numElements(b)));
    if (world.rank() == holder)
      std::copy_n(reinterpret_cast<const float *>(memory.data(param)),
                  values.size(), values.data());
    if (io::Status e = world.broadcast(
            values.data(), int64_t(values.size() * sizeof(float)), holder))
      return e;
    if (world.rank() != 0)
      continue;
    storage.push_back(std::move(values));
    io::TensorRef ref;
    ref.name = b.name();
    ref.dtype = io::DType::F32;
    ref.shape.assign(b.shape().begin(), b.shape().end());
    ref.data = storage.back().data();
    ref.byteSize = storage.back().size() * sizeof(float);
    tensors.push_back(std::move(ref));
  }
  return std::nullopt;
}

io::Status Trainer::saveOutputs(int64_t steps) {
  exec::Memory &memory = executor.memory();
  if (io::Status e = executor.parametersToHost())
    return e;
  if (!options.saveParams.empty()) {
    // Rank 0 writes every parameter: its own and the experts it lacks.
    std::vector<io::TensorRef> tensors = parameterTensors(memory);
    std::vector<std::vector<float>> gathered;
    if (io::Status e = gatherToRankZero(gathered, tensors))
      return e;
    if (world.rank() == 0)
      if (io::Status e = io::saveSafetensors(options.saveParams, tensors))
        return e;
  }
  if (world.rank() != 0)
    return std::nullopt;
  if (options.expertLoads.empty())
    return std::nullopt;
  io::ExpertLoads file;
  file.model = executor.plan().model().name();
  file.steps = steps;
  for (size_t l = 0; l < loadTotals.size(); ++l)
    file.layers.push_back(
        {modelLayerOf(memory.plan().buffers(balance.biasBuffer(l)).name())
             .value_or(-1),
         loadTotals[l]});
  return io::writeExpertLoads(options.expertLoads, file);
}

io::Expected<double> Trainer::evaluate() {
  if (split.validation.size() == 0)
    return io::makeError(options.dataPath, "no validation split");
  int64_t rows = executor.plan().training().micro_batch();
  io::Expected<io::EvalBatches> batches =
      io::EvalBatches::create(*data, split.validation, rows * dataRanks(),
                              executor.tokenCount() / rows);
  if (!batches)
    return batches.error();
  double sum = 0;
  int64_t used = 0;
  for (int64_t i = 0; i < batches->numBatches() && used < options.evalBatches;
       ++i) {
    if (batches->batch(i, batch) != rows * dataRanks())
      break; // Only full micro-batches fit the plan.
    ++used;
    if (pipeline) {
      // Through the stages; the last stage's ranks have the loss.
      for (exec::Executor *e : pipeline->executorsOf(0))
        feed(batch, *e);
      if (io::Status e = pipeline->runForward())
        return *e;
      if (exec::Executor *e = pipeline->lossExecutor(0))
        sum += e->loss(1);
      continue;
    }
    feed(batch, executor);
    if (io::Status e = executor.runForward())
      return *e;
    sum += executor.loss(1);
  }
  if (used == 0)
    return io::makeError(options.dataPath,
                         "the validation split holds no full micro-batch");
  double mean = sum / double(used);
  if (io::Status e = averageOverRanks(&mean, 1))
    return *e;
  return mean;
}

io::Expected<TrainSummary> Trainer::run(const std::atomic<bool> &stop,
                                        std::FILE *log) {
  const TrainingConfig &t = executor.plan().training();
  TrainSummary summary;
  summary.firstStep = summary.lastStep = startStep;
  // Rank 0 speaks for the job: progress lines and the loss log.
  bool leader = world.rank() == 0;
  std::FILE *csv = nullptr;
  if (!options.lossLog.empty() && leader) {
    if (startStep > 0)
      if (io::Status e = trimLossLog(options.lossLog, startStep))
        return *e;
    csv = std::fopen(options.lossLog.c_str(), startStep > 0 ? "a" : "w");
    if (!csv)
      return io::makeError(options.lossLog, "cannot open the loss log");
    if (startStep == 0)
      std::fprintf(csv, "%s\n", kLossLogHeader);
  }
  auto closeCsv = [&] {
    if (csv)
      std::fclose(csv);
  };
  int64_t tokensPerStep =
      t.micro_batches() * t.micro_batch() * t.seq_len() * dataRanks();
  auto start = std::chrono::steady_clock::now();
  if (startStep > 0 && leader)
    std::fprintf(log, "resumed from step %lld\n", (long long)startStep);
  for (int64_t step = startStep; step < options.steps; ++step) {
    double loss, lmLoss, mtpLoss;
    bool traced =
        !options.tracePath.empty() && step < startStep + options.traceSteps;
    setTrace(traced ? &traceEvents : nullptr);
    io::Status failed = trainStep(step, loss, lmLoss, mtpLoss);
    setTrace(nullptr);
    if (failed) {
      closeCsv();
      return *failed;
    }
    if (traced && (step + 1 == startStep + options.traceSteps ||
                   step + 1 == options.steps))
      if (io::Status e = writeTrace()) {
        closeCsv();
        return *e;
      }
    // A signal may reach the ranks at different steps: they stop together.
    int64_t stopping = stop ? 1 : 0;
    if (io::Status e = world.allReduceSum(&stopping, 1)) {
      closeCsv();
      return *e;
    }
    int64_t done = step + 1;
    summary.lastStep = done;
    summary.finalLoss = loss;
    summary.finalLmLoss = lmLoss;
    summary.tokens += tokensPerStep;
    std::optional<double> val;
    bool last = done == options.steps || stopping > 0;
    if ((options.evalInterval > 0 && done % options.evalInterval == 0) ||
        (last && options.valFraction > 0)) {
      io::Expected<double> v = evaluate();
      if (!v) {
        closeCsv();
        return v.error();
      }
      val = *v;
      summary.finalValLoss = val;
    }
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    summary.seconds = elapsed;
    if (csv)
      std::fprintf(csv, "%lld,%.6f,%.6f,%.6f,%s,%.6g,%.4f\n", (long long)done,
                   loss, lmLoss, mtpLoss,
                   val ? std::to_string(*val).c_str() : "",
                   learningRate(t, step), balance.imbalance());
    if (leader && (done % options.logInterval == 0 || last || val)) {
      double rate = double(summary.tokens) / std::max(elapsed, 1e-9);
      double eta =
          elapsed / double(done - startStep) * double(options.steps - done);
      std::fprintf(
          log,
          "step %lld/%lld | loss %.4f | lm %.4f | mtp %.4f%s | %.0f "
          "tok/s | imbalance %.2f | lr %.2e | %s elapsed | ETA %s\n",
          (long long)done, (long long)options.steps, loss, lmLoss, mtpLoss,
          val ? (" | val " + std::to_string(*val).substr(0, 6)).c_str() : "",
          rate, balance.imbalance(), learningRate(t, step),
          duration(elapsed).c_str(), duration(eta).c_str());
      std::fflush(log);
    }
    bool periodic = options.checkpointInterval > 0 &&
                    done % options.checkpointInterval == 0;
    // The loss log holds every step a checkpoint covers: a run killed after
    // it resumes from there without a gap in the log.
    if (csv && !checkpointDir.empty() && (periodic || last))
      std::fflush(csv);
    if (!checkpointDir.empty() && (periodic || last))
      if (io::Status e = saveCheckpoint(done)) {
        closeCsv();
        return *e;
      }
    if (stopping > 0 && done < options.steps) {
      summary.interrupted = true;
      break;
    }
  }
  closeCsv();
  if (io::Status e = saveOutputs(summary.lastStep - startStep))
    return *e;
  return summary;
}

} // namespace dsflow::train
