//===- dsflow-schedule.cpp - Generate, check and draw pipeline schedules --===//
//
// dsflow-schedule --schedule 1f1b|zb1p|dualpipe|dualpipev --pp N
//                 --micro-batches M [--cost-f F --cost-b B --cost-w W
//                 --cost-fb FB] [--streams] [--timeline out.svg]
//                 [--trace out.json]
// Generates every rank's instruction stream (compiler/Schedule), runs it in
// the simulation (which also checks it for deadlocks and for every chunk
// computed once) and prints per rank the bubble, peak activations and
// parameter copies, next to DeepSeek's published figures. --streams lists the
// streams; --timeline draws them as DeepSeek's report does (SVG); --trace
// writes Chrome trace-event JSON for Perfetto. Any bad flag: a one-line
// error, exit 1, no output file.
//
//===----------------------------------------------------------------------===//
#include "Schedule/ChromeTrace.h"
#include "Schedule/DeepSeekFigures.h"
#include "Schedule/ScheduleGenerators.h"
#include "Schedule/TimelineSvg.h"
#include "ScheduleFlag.h"
#include "io/AtomicFile.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/InitLLVM.h"

#include <algorithm>
#include <cstdio>
#include <sys/stat.h>

namespace cl = llvm::cl;
using namespace dsflow;
using namespace dsflow::schedule;

namespace {

cl::OptionCategory scheduleCategory("Schedule");
cl::opt<ScheduleKind> kind("schedule", cl::desc("Pipeline schedule"),
                           cl::Required, dsflow::scheduleKindValues(),
                           cl::cat(scheduleCategory));
cl::opt<int> pp("pp", cl::desc("Pipeline stages"), cl::Required,
                cl::cat(scheduleCategory));
cl::opt<int> microBatches("micro-batches", cl::desc("Micro-batches per step"),
                          cl::Required, cl::cat(scheduleCategory));
cl::opt<double> costF("cost-f", cl::desc("Time of a forward chunk (F)"),
                      cl::init(1), cl::cat(scheduleCategory));
cl::opt<double> costB("cost-b",
                      cl::desc("Time of a full backward chunk (B, with W)"),
                      cl::init(2), cl::cat(scheduleCategory));
cl::opt<double> costW("cost-w",
                      cl::desc("Time of its weight-gradient part (W)"),
                      cl::init(1), cl::cat(scheduleCategory));
cl::opt<double> costFB("cost-fb",
                       cl::desc("Time of an overlapped forward and backward "
                                "pair (F&B; default F + B)"),
                       cl::cat(scheduleCategory));
cl::opt<bool> listStreams("streams", cl::desc("List every rank's stream"),
                          cl::init(false), cl::cat(scheduleCategory));
cl::opt<std::string> timelinePath("timeline",
                                  cl::desc("Draw the timeline (SVG)"),
                                  cl::value_desc("file"),
                                  cl::cat(scheduleCategory));
cl::opt<std::string> tracePath("trace", cl::desc("Write a Chrome trace (JSON)"),
                               cl::value_desc("file"),
                               cl::cat(scheduleCategory));

int fail(const std::string &message) {
  std::fprintf(stderr, "dsflow-schedule: error: %s\n", message.c_str());
  return 1;
}

bool given(const cl::Option &option) { return option.getNumOccurrences() > 0; }

/// The directory `path` would be written to exists (checked before anything
/// is written, so a bad second path leaves no first file behind).
bool directoryExists(const std::string &path) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
  struct stat st;
  return stat(dir.empty() ? "/" : dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string stagesText(const PipelineSchedule &s, int rank) {
  std::string text;
  for (int stage : s.stagesHeld(rank))
    text += (text.empty() ? "" : ",") + std::to_string(stage);
  return text;
}

void printStreams(const PipelineSchedule &s, const SimulationResult &r) {
  for (int rank = 0; rank < s.ranks; ++rank) {
    std::printf(
        "\nrank %d (stages %s):\n     #    start      end  instruction\n", rank,
        stagesText(s, rank).c_str());
    for (size_t i = 0; i < s.streams[rank].size(); ++i)
      std::printf("  %4zu  %8g %8g  %s\n", i, r.times[rank][i].start,
                  r.times[rank][i].end, describe(s.streams[rank][i]).c_str());
  }
}

void printReport(const PipelineSchedule &s, const SimulationResult &r,
                 const ChunkCosts &c) {
  std::printf("schedule: %s, PP %d, %d ranks, %d micro-batches; costs F=%g "
              "B=%g W=%g F&B=%g\n",
              scheduleName(s.kind), s.stages, s.ranks, s.microBatches,
              c.forward, c.backward, c.weight, c.forwardBackward);
  std::printf("makespan: %g\n\n", r.makespan);
  std::printf("| rank | stages | busy | bubble | peak activations | "
              "parameter copies |\n|---:|---|---:|---:|---:|---:|\n");
  double bubble = 0;
  int peak = 0, copies = 0;
  for (int rank = 0; rank < s.ranks; ++rank) {
    const RankReport &rr = r.ranks[rank];
    std::printf("| %d | %s | %g | %g | %d | %d |\n", rank,
                stagesText(s, rank).c_str(), rr.busy, rr.bubble,
                rr.peakActivations, rr.parameterCopies);
    bubble = std::max(bubble, rr.bubble);
    peak = std::max(peak, rr.peakActivations);
    copies = std::max(copies, rr.parameterCopies);
  }
  ScheduleFigures f = deepSeekFigures(s.kind, s.stages, c);
  std::printf("\nbubble (largest rank): simulated %g, DeepSeek %s = %g\n",
              bubble, bubbleFormula(s.kind), f.bubble);
  std::printf("peak activations (largest rank): simulated %d, DeepSeek %d\n",
              peak, f.activations);
  std::printf("parameter copies per rank: simulated %dx, DeepSeek %dx\n",
              copies, f.parameterCopies);
  std::printf("ranks: %d, DeepSeek %d\n", s.ranks, f.ranks);
  std::string condition = figureCondition(s.kind, s.stages, s.microBatches, c);
  if (!condition.empty())
    std::printf("note: DeepSeek's bubble assumes %s\n", condition.c_str());
}

} // namespace

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  // LLVM's own options (linked in with MLIR) are not for users.
  cl::HideUnrelatedOptions(scheduleCategory);
  cl::ParseCommandLineOptions(argc, argv, "dsflow pipeline schedules\n");
  ChunkCosts costs{costF, costB, costW,
                   given(costFB) ? double(costFB) : costF + costB};
  if (io::Status error = validateCosts(costs))
    return fail(error->message);
  for (const std::string *path : {&timelinePath, &tracePath})
    if (!path->empty() && !directoryExists(*path))
      return fail(*path + ": no such directory");
  io::Expected<PipelineSchedule> schedule =
      generateSchedule(kind, pp, microBatches);
  if (!schedule)
    return fail(schedule.error().message);
  io::Expected<SimulationResult> result = simulate(*schedule, costs);
  if (!result)
    return fail(result.error().message);
  if (!timelinePath.empty()) {
    char title[160];
    std::snprintf(title, sizeof(title),
                  "%s, PP %d, %d micro-batches (F=%g B=%g W=%g F&B=%g)",
                  scheduleName(kind), int(pp), int(microBatches), costs.forward,
                  costs.backward, costs.weight, costs.forwardBackward);
    if (io::Status error = io::writeFileAtomically(
            timelinePath, timelineSvg(*schedule, *result, costs, title)))
      return fail(error->message);
  }
  if (!tracePath.empty())
    if (io::Status error = io::writeFileAtomically(
            tracePath, chromeTraceJson(*schedule, *result)))
      return fail(error->message);
  printReport(*schedule, *result, costs);
  if (listStreams)
    printStreams(*schedule, *result);
  return 0;
}
