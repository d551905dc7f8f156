//===- PipelineRunner.h - A rank's pipeline stages through a step -*- C++
//-*-===//
//
// Under pipeline parallelism (the plan's pipeline record, pp > 1) a rank runs
// only its stages' kernels (plan/KernelStages.h), for every micro-batch of a
// step, in the order its stream of the plan's schedule gives
// (compiler/Schedule: 1F1B, ZB1P, DualPipe, DualPipeV). Each micro-batch has
// its own executor (inputs and activations) for each stage of this rank it
// passes, all sharing the parameters and gradients. A tensor another stage
// reads is sent right after the kernel
// making it; a tensor this stage reads from another is received just before
// the first of its kernels that comes after the producer in program order
// (the activation arena is planned for program order: earlier kernels may
// reuse its memory). Messages are point-to-point (MPI, or the TCP world's
// direct connections), tagged by micro-batch and tensor; between two stages
// of one rank (DualPipeV) they are copies.
//
// With a device (exec/Offload.h), each executor has its own, made by the
// first's factory: messages leave from and arrive in host memory (the
// device's copy follows), and the training state stays on the host. A
// ForwardBackward pair (DualPipe's) then overlaps: the remote inputs of both
// chunks are received first, both chunks' kernels are launched (each
// executor's device has its own streams) before the host waits for either,
// and the messages leave after, each copied out as its producer left it
// (Executor::startCopyOut) - the order the schedule's simulation assumes
// (compiler/Schedule/ScheduleSimulation).
// Decisions, for the CPU backend:
// - A schedule's B instruction runs the chunk's backward without its
//   weight-gradient part, and its W instruction that part
//   (plan/KernelStages.h: weightGradientPart), when the plan's arena keeps
//   the W part's inputs to the end of the step (dsflow-compile does for
//   ZB1P, DualPipe and DualPipeV). Otherwise, and for full backwards, the
//   backward runs whole and W is a no-op. A pair F&B runs F then B (no
//   overlap on the CPU; its messages leave as soon as made).
// - A rank allocates only its stages' parameters (dsflow-run). A stage's
//   gradients are reduced over the ranks holding it (experts: those with the
//   same EP rank), which also keeps DualPipe's two copies of a stage equal
//   (Trainer).
// Ranks: world rank = pipeline rank * (world / pp) + data-parallel index.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TRAIN_PIPELINERUNNER_H
#define DSFLOW_TRAIN_PIPELINERUNNER_H

#include "Schedule/PipelineSchedule.h"
#include "dist/Communicator.h"
#include "exec/Executor.h"
#include "plan/KernelStages.h"

#include <map>
#include <memory>
#include <set>
#include <vector>

namespace dsflow::train {

class PipelineRunner {
public:
  /// Which pipeline ranks hold which stages under the plan's schedule.
  struct StageHolders {
    /// Per stage, the lowest pipeline rank holding it (in any direction).
    std::vector<int> first;
    /// Per pipeline rank, the stages it holds.
    std::vector<std::set<int>> held;
  };
  static io::Expected<StageHolders> stageHolders(const Plan &plan);

  /// For this rank of `world`; `first` becomes micro-batch 0's executor.
  static io::Expected<std::unique_ptr<PipelineRunner>>
  create(exec::Executor &first, dist::Communicator &world);

  int microBatches() const { return plan.microBatches; }
  /// The executors of micro-batch `mb` on this rank (one per stage it passes
  /// here): each needs the micro-batch's tokens.
  std::vector<exec::Executor *> executorsOf(int microBatch) const;
  /// The executor that computed micro-batch `mb`'s losses, or null when
  /// another rank did (it holds the last stage in that micro-batch's
  /// direction).
  exec::Executor *lossExecutor(int microBatch) const;
  /// Ranks that train on different data (world / pp).
  int dataParallelRanks() const { return inner; }
  int dataParallelIndex() const { return world.rank() % inner; }

  /// Runs this rank's stream for one step; every micro-batch's tokens must
  /// be in its executor.
  io::Status runStep();
  /// Runs micro-batch 0's forward through the stages (evaluation); its
  /// tokens must be in its executors.
  io::Status runForward();

  /// ForwardBackward pairs run so far with both chunks launched before the
  /// host waited for either (a device); of those, the ones in which the host
  /// waited for the device nowhere between the launches; and the waits at
  /// which the launches switched to the other chunk (each chunk launches
  /// until the host would wait, then the other does).
  struct PairCounts {
    int64_t overlapped = 0, withoutWaits = 0, interleavedWaits = 0;
  };
  const PairCounts &pairCounts() const { return pairs; }
  /// What crossed between host and devices, summed over this rank's
  /// executors (a device per micro-batch in flight; zeros without).
  exec::OffloadCounts offloadCounts() const;

private:
  /// A message copied out of `executor` (after its finishCopiesOut) to send.
  struct Outgoing {
    int microBatch;
    size_t crossing;
    exec::Executor *executor;
    std::vector<std::byte> bytes;
  };
  PipelineRunner(dist::Communicator &world) : world(world) {}
  class ChunkRun;
  /// Runs `kernels` of chunk c with its stage's messages (`backward`: the
  /// backward's crossings).
  io::Status chunk(const schedule::Chunk &c, bool backward,
                   const std::vector<std::vector<char>> &kernels);
  /// A ForwardBackward instruction: forward chunk f, backward chunk b. With
  /// a device their launches interleave (Executor::launchKernels).
  io::Status pair(const schedule::Chunk &f, const schedule::Chunk &b);
  /// Whether crossing `i` is an input of chunk c's forward or backward.
  bool incoming(const schedule::Chunk &c, bool backward, size_t i) const;
  /// Puts crossing i's tensor into chunk c's executor.
  io::Status receive(const schedule::Chunk &c, size_t i);
  /// Receives the remote inputs of chunk c's forward or backward now.
  io::Status receiveAhead(const schedule::Chunk &c, bool backward);
  /// Sends micro-batch mb's crossing i (to this rank: keeps it).
  io::Status deliver(int microBatch, size_t i, const std::byte *from);
  int worldRankOf(int microBatch, int stage) const;
  int tagOf(int microBatch, size_t crossing) const;
  int64_t bytesOf(size_t crossing) const { return crossingBytes[crossing]; }
  /// The W part of chunk c's backward (no messages: it makes none).
  io::Status weights(const schedule::Chunk &c);

  dist::Communicator &world;
  int inner = 1, pipelineRank = 0;
  schedule::PipelineSchedule plan;
  std::vector<std::unique_ptr<exec::Executor>> owned;
  /// (micro-batch, stage) -> its executor on this rank.
  std::map<std::pair<int, int>, exec::Executor *> slots;
  /// Tensors here before their chunk reads them, by (micro-batch,
  /// crossing): from a stage of this rank, or received ahead of a pair.
  std::map<std::pair<int, size_t>, std::vector<std::byte>> arrived;
  PairCounts pairs;
  /// Per stage: its forward and its backward kernels; the backward split
  /// into its B and W parts when W is deferred.
  std::vector<std::vector<char>> forwardKernels, backwardKernels,
      inputGradientKernels, weightGradientKernels;
  bool deferWeights = false;
  /// Distinct crossing tensors (buffer, from, to), in one order on all ranks,
  /// with the kernel writing each.
  std::vector<stages::StageCrossing> crossings;
  std::vector<int32_t> producer;
  std::vector<int64_t> crossingBytes;
  /// Each kernel's position in the train program.
  std::vector<int> position;
};

} // namespace dsflow::train

#endif // DSFLOW_TRAIN_PIPELINERUNNER_H
