//===- PipelineSummary.cpp - dsflow-plan's pipeline analysis --------------===//
#include "PipelineSummary.h"

#include "Schedule/ChromeTrace.h"
#include "Schedule/ScheduleGenerators.h"
#include "Schedule/ScheduleSimulation.h"
#include "Schedule/TimelineSvg.h"
#include "Stages/RankMemory.h"
#include "io/AtomicFile.h"
#include "plan/KernelStages.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace dsflow {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr double kGpuBytes = 80e9; // An 80 GB H800 / H100.

void printMemory(const Plan &plan, const schedule::PipelineSchedule &s,
                 const schedule::SimulationResult &result,
                 const std::vector<schedule::ChunkActivations> &chunks,
                 const std::vector<double> &workspaceByStage) {
  std::vector<std::vector<int>> stagesOfRank(s.ranks);
  for (const std::vector<int> &holders : s.holder)
    for (int stage = 0; stage < int(holders.size()); ++stage)
      stagesOfRank[holders[stage]].push_back(stage);
  std::vector<int> peak;
  for (const schedule::RankReport &r : result.ranks)
    peak.push_back(r.peakActivations);
  // What the chunks in flight keep, plus the workspace of the chunks running
  // at once: two where an F&B pair runs a forward and a backward together.
  std::vector<double> activations;
  for (int r = 0; r < s.ranks; ++r) {
    const std::vector<schedule::Instruction> &stream = s.streams[r];
    bool pairs = std::any_of(stream.begin(), stream.end(), [](auto &in) {
      return in.op == schedule::Op::ForwardBackward;
    });
    double workspace = 0;
    for (int stage : stagesOfRank[r])
      workspace = std::max(workspace, workspaceByStage[stage]);
    activations.push_back(schedule::peakLiveActivations(stream, chunks) +
                          (pairs ? 2 : 1) * workspace);
  }
  std::vector<stages::RankMemory> memory =
      stages::estimateRankMemory(plan, stagesOfRank, activations);
  std::printf("memory per GPU (estimate, GiB): parameters + gradients + "
              "optimizer + activations = total\n");
  size_t worst = 0;
  for (size_t r = 0; r < memory.size(); ++r) {
    const stages::RankMemory &m = memory[r];
    std::set<int> held(stagesOfRank[r].begin(), stagesOfRank[r].end());
    std::string list;
    for (int stage : held)
      list += (list.empty() ? "" : ",") + std::to_string(stage);
    std::printf("  pipeline rank %zu (stages %s, %d chunks in flight): "
                "%.1f + %.1f + %.1f + %.1f = %.1f\n",
                r, list.c_str(), peak[r], m.parameters / kGiB,
                m.gradients / kGiB, m.optimizer / kGiB, m.activations / kGiB,
                m.total() / kGiB);
    if (m.total() > memory[worst].total())
      worst = r;
  }
  double most = memory[worst].total();
  std::printf("largest: pipeline rank %zu, %.1f GiB: %s 80 GB (%.1f GiB)\n",
              worst, most / kGiB, most <= kGpuBytes ? "fits" : "DOES NOT fit",
              kGpuBytes / kGiB);
}
/// Kernels per stage, the bytes crossing stages and those kept for the
/// backward, per micro-batch.
void printKernelStages(const Plan &plan, const stages::KernelStages &split,
                       const std::vector<schedule::ChunkActivations> &chunks,
                       const std::vector<double> &workspaceByStage) {
  int count = plan.pipeline().stages_size();
  std::vector<int> forward(count, 0), backward(count, 0);
  for (int k = 0; k < plan.kernels_size(); ++k)
    if (int s = split.stageOfKernel[k]; s >= 0)
      ++(plan.kernels(k).backward() ? backward : forward)[s];
  std::vector<double> sentForward(count, 0), sentBack(count, 0);
  std::set<std::pair<int32_t, int>> counted; // a buffer once per receiver
  for (const stages::StageCrossing &c : split.crossings)
    if (counted.insert({c.buffer, c.to}).second)
      (c.backward ? sentBack : sentForward)[c.from] +=
          double(plan.buffers(c.buffer).bytes());
  auto size = [](double bytes) {
    char text[32];
    if (bytes < (1 << 20))
      std::snprintf(text, sizeof(text), "%.0f bytes", bytes);
    else
      std::snprintf(text, sizeof(text), "%.1f MiB", bytes / (1 << 20));
    return std::string(text);
  };
  std::printf("kernel stages (train program, per micro-batch):\n");
  for (int s = 0; s < count; ++s)
    std::printf("  stage %d: %d forward + %d backward kernels; sends %s of "
                "activations on, %s of gradients back; keeps %s for the "
                "backward, %s workspace%s\n",
                s, forward[s], backward[s], size(sentForward[s]).c_str(),
                size(sentBack[s]).c_str(), size(chunks[s].kept).c_str(),
                size(workspaceByStage[s]).c_str(),
                plan.memory().weight_gradients_deferred()
                    ? ("; W reads " + size(chunks[s].keptForWeights) +
                       " of them and " + size(chunks[s].waitingForWeights) +
                       " from B")
                          .c_str()
                    : "");
  std::string names;
  for (int32_t b : split.sharedParameters)
    names += (names.empty() ? "" : ", ") + plan.buffers(b).name();
  if (!names.empty())
    std::printf("  parameters used on more than one stage: %s\n",
                names.c_str());
}

} // namespace

io::Status printPipelineSummary(const Plan &plan,
                                const std::string &timelinePath,
                                const std::string &tracePath) {
  if (!plan.has_pipeline())
    return timelinePath.empty() && tracePath.empty()
               ? io::Status()
               : io::makeError("plan", "has no pipeline stages to draw "
                                       "(compile with --pp > 1)");
  const PipelinePlan &p = plan.pipeline();
  std::optional<schedule::ScheduleKind> kind =
      schedule::parseScheduleKind(p.schedule());
  if (!kind)
    return io::makeError("plan", "unknown schedule '" + p.schedule() + "'");
  int microBatches = int(plan.training().micro_batches());
  io::Expected<schedule::PipelineSchedule> s =
      schedule::generateSchedule(*kind, p.stages_size(), microBatches);
  if (!s)
    return io::makeError("plan", s.error().message);
  // Uniform chunk costs (DeepSeek's figures), then each stage's chunks in
  // proportion to its estimated cost, the costliest stage's forward being 1.
  schedule::ChunkCosts uniform{1, 2, 1, 3, {}}, costs = uniform;
  double costliest = 0;
  for (const PipelineStage &stage : p.stages())
    costliest = std::max(costliest, stage.cost());
  if (costliest > 0)
    for (const PipelineStage &stage : p.stages())
      costs.stageScale.push_back(stage.cost() / costliest);
  io::Expected<schedule::SimulationResult> even =
      schedule::simulate(*s, uniform);
  io::Expected<schedule::SimulationResult> result =
      schedule::simulate(*s, costs);
  if (!even || !result)
    return io::makeError("plan", (even ? result : even).error().message);
  auto worstBubble = [](const schedule::SimulationResult &r) {
    double bubble = 0;
    for (const schedule::RankReport &rank : r.ranks)
      bubble = std::max(bubble, rank.bubble);
    return bubble;
  };
  std::printf("\nschedule %s, %d micro-batches on %d pipeline ranks (simulated,"
              " F = 1, B = 2, W = 1, F&B = 3 on every stage): bubble %.0f of "
              "%.0f on the worst rank (%.1f%%)\n",
              p.schedule().c_str(), microBatches, s->ranks, worstBubble(*even),
              even->makespan, 100.0 * worstBubble(*even) / even->makespan);
  std::printf("  with each stage's chunks in proportion to its estimated cost "
              "(the costliest's F = 1): bubble %.1f of %.1f (%.1f%%)\n",
              worstBubble(*result), result->makespan,
              100.0 * worstBubble(*result) / result->makespan);
  io::Expected<stages::KernelStages> split = stages::assignKernelStages(plan);
  if (!split) {
    std::printf("kernel stages: cannot split: %s\n",
                split.error().message.c_str());
  } else {
    std::vector<schedule::ChunkActivations> chunks =
        stages::chunkActivationsByStage(plan, *split);
    std::vector<double> workspace = stages::workspaceBytesByStage(plan, *split);
    printKernelStages(plan, *split, chunks, workspace);
    if (plan.has_cluster())
      printMemory(plan, *s, *result, chunks, workspace);
  }
  if (!timelinePath.empty()) {
    std::string title = p.schedule() + ", " + std::to_string(p.stages_size()) +
                        " stages, " + std::to_string(microBatches) +
                        " micro-batches (" + plan.model().name() + ")";
    if (io::Status e = io::writeFileAtomically(
            timelinePath, schedule::timelineSvg(*s, *result, costs, title)))
      return e;
  }
  if (!tracePath.empty())
    if (io::Status e = io::writeFileAtomically(
            tracePath, schedule::chromeTraceJson(*s, *result)))
      return e;
  return std::nullopt;
}

} // namespace dsflow
