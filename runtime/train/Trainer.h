//===- Trainer.h - The training loop ----------------------------*- C++ -*-===//
//
// Drives an Executor through optimizer steps: samples micro-batches, runs the
// program, clips and applies AdamW, moves the router biases, evaluates on the
// held-out split, logs progress, and saves crash-safe checkpoints (and on
// SIGINT/SIGTERM). Resuming from a checkpoint continues bitwise identically.
// On several ranks (the plan's cluster) each trains on its slice of the global
// batch: the batch a single process would draw, split by rank, so both reach
// the same parameters; gradients, losses and expert loads are summed over the
// ranks (DataParallel.h).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_TRAINER_H
#define DSFLOW_RUNTIME_TRAIN_TRAINER_H

#include "dist/Communicator.h"
#include "exec/Executor.h"
#include "io/BatchSampler.h"
#include "io/SafetensorsWriter.h"
#include "io/TokenData.h"
#include "train/AdamW.h"
#include "train/DataParallel.h"
#include "train/ExpertBalance.h"
#include "train/ExpertSharding.h"
#include "train/PipelineRunner.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <optional>

namespace dsflow::train {

struct TrainOptions {
  std::string dataPath;
  io::TokenFormat format = io::TokenFormat::Auto;
  double valFraction = 0.1;
  int64_t steps = 100;
  int64_t logInterval = 10;
  /// Evaluate every N steps (0: only at the end).
  int64_t evalInterval = 0;
  int64_t evalBatches = 8;
  std::string checkpointDir;
  /// Save every N steps (0: only at the end and on a signal).
  int64_t checkpointInterval = 0;
  bool resume = false;
  double initStd = 0.02;
  /// The initialization and data-order seed instead of the plan's (resume
  /// with the same one).
  std::optional<uint64_t> seed;
  /// A CSV of per-step losses, when set.
  std::string lossLog;
  /// When set, the first step's internals go to this safetensors file (see
  /// StepDump.h): for checking dsflow against an independent implementation.
  std::string dumpStep;
  /// When set, the final parameters go to this safetensors file (rank 0).
  std::string saveParams;
  /// When set, the tokens each routed expert received over the run go to this
  /// loads file (io/ExpertLoads.h; rank 0, summed over the ranks).
  std::string expertLoads;
  /// When set, every kernel every rank ran in the first traceSteps steps goes
  /// to this Chrome trace (exec/KernelTrace.h; written by rank 0).
  std::string tracePath;
  int64_t traceSteps = 2;
};

/// What a finished (or interrupted) run did.
struct TrainSummary {
  int64_t firstStep = 0, lastStep = 0;
  double finalLoss = 0, finalLmLoss = 0;
  std::optional<double> finalValLoss;
  int64_t tokens = 0;
  double seconds = 0;
  bool interrupted = false;
};

class Trainer {
public:
  /// `world`: the job's ranks (a self communicator for one process).
  static io::Expected<std::unique_ptr<Trainer>>
  create(exec::Executor &executor, const TrainOptions &options,
         dist::Communicator &world);

  /// Trains until options.steps or until `stop` becomes true; writes progress
  /// lines to `log`.
  io::Expected<TrainSummary> run(const std::atomic<bool> &stop, std::FILE *log);
  /// This rank's pipeline stages, or null without pipeline parallelism.
  const PipelineRunner *pipelineRunner() const { return pipeline.get(); }

private:
  /// The ranks holding a stage's dense tensors, or (experts) its routed
  /// experts of this rank's EP rank.
  struct StageGroup {
    int stage;
    bool experts;
    std::unique_ptr<dist::Communicator> ranks;
  };
  Trainer(exec::Executor &executor, const TrainOptions &options,
          dist::Communicator &world, ExpertSharding sharding,
          std::unique_ptr<dist::Communicator> expertGroup,
          std::optional<PipelineRunner::StageHolders> stages,
          std::vector<StageGroup> stageGroups);
  /// Whether `grad` is a routed expert's (EP-sharded or replicated).
  bool routed(int32_t grad) const;
  /// The pipeline stage of `grad`'s tensor.
  int stageOf(int32_t grad) const;
  std::vector<std::unique_ptr<DataParallel>> stageDataParallel();
  /// The group of a dense tensor's stage, if this rank holds the stage.
  const DataParallel *stageGroupOf(int32_t grad) const;
  /// The groups besides dataParallel.
  std::vector<DataParallel *> otherGroups() const;
  /// The lowest world rank holding parameter buffer `param`.
  int holderOf(int32_t param) const;
  /// Brings rank 0 the parameters it does not hold (other EP ranks' experts,
  /// other stages' tensors), as named tensors (filled on rank 0 only).
  /// Collective over the world.
  io::Status gatherToRankZero(std::vector<std::vector<float>> &storage,
                              std::vector<io::TensorRef> &tensors);
  /// Whether this rank updates (and counts the norm of) the tensor of `grad`.
  bool updates(int32_t grad) const;
  bool owns(int32_t grad) const;
  /// Copies this rank's rows of the global batch into `into`'s token input.
  void feed(const std::vector<int32_t> &globalBatch, exec::Executor &into);
  /// Ranks that train on different rows (all but pipeline stages).
  int dataRanks() const;
  /// Records every executor's kernels into `events` (null: stops).
  void setTrace(std::vector<exec::KernelEvent> *events);
  /// The mean over ranks of per-rank values (losses).
  io::Status averageOverRanks(double *values, int64_t count);
  /// The checkpoint to resume from, the same step on every rank; none when
  /// no rank has one.
  io::Expected<std::optional<io::Checkpoint>> loadCommonCheckpoint();
  io::Status resumeFrom(const io::Checkpoint &checkpoint);
  io::Status saveCheckpoint(int64_t step);
  /// Writes --save-params and --expert-loads at the end of a run (rank 0).
  io::Status saveOutputs(int64_t steps);
  /// Gathers every rank's traced kernels; rank 0 writes options.tracePath.
  io::Status writeTrace();
  io::Status trainStep(int64_t step, double &loss, double &lmLoss,
                       double &mtpLoss);
  io::Expected<double> evaluate();
  double lastLr = 0, lastGradScale = 1;

  exec::Executor &executor;
  TrainOptions options;
  dist::Communicator &world;
  /// options.checkpointDir, or its rank-NNNNN subdirectory on several ranks.
  std::string checkpointDir;
  ExpertSharding sharding;
  /// The ranks holding this rank's experts (expert parallelism without
  /// pipeline stages).
  std::unique_ptr<dist::Communicator> expertGroup;
  /// Which pipeline ranks hold which stages (pipeline parallelism).
  std::optional<PipelineRunner::StageHolders> stages;
  /// Per parameter buffer, its gradient buffer (-1: none).
  std::vector<int32_t> gradientOf;
  /// Every tensor but the routed experts', over the world (with stages: the
  /// replicated experts', see the constructor).
  DataParallel dataParallel;
  /// With stages: per stage this rank holds, the group of its dense tensors
  /// and (with EP) of its experts.
  std::vector<StageGroup> stageGroups;
  std::vector<std::unique_ptr<DataParallel>> stageData;
  /// This rank's experts held on one EP rank, over expertGroup.
  std::unique_ptr<DataParallel> expertData;
  /// Experts with replicas on several EP ranks, summed over the world.
  std::unique_ptr<DataParallel> replicatedExperts;
  std::unique_ptr<io::TokenData> data;
  io::DataSplit split;
  std::unique_ptr<io::BatchSampler> sampler;
  AdamW optimizer;
  ExpertBalance balance;
  int64_t startStep = 0;
  std::vector<int32_t> batch;
  std::vector<exec::KernelEvent> traceEvents;
  /// This rank's pipeline stages (pp > 1).
  std::unique_ptr<PipelineRunner> pipeline;
  /// Per MoE layer, per expert tokens summed over the run's steps.
  std::vector<std::vector<int64_t>> loadTotals;
};

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_TRAINER_H
