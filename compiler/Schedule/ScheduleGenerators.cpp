//===- ScheduleGenerators.cpp - Size checks and the generator table -------===//
#include "Schedule/ScheduleGenerators.h"

namespace dsflow::schedule {

// Bounds what one schedule allocates (instructions grow with pp x
// micro-batches).
static constexpr int kMaxStages = 1 << 12;
static constexpr int kMaxMicroBatches = 1 << 20;
static constexpr long long kMaxChunks = 1LL << 22;

static io::IoError fail(const std::string &message) {
  return io::IoError{message};
}

io::Status checkScheduleSizes(ScheduleKind kind, int pp, int m) {
  std::string name = scheduleName(kind);
  if (pp < 1 || pp > kMaxStages)
    return fail(name + ": pp must be in [1, " + std::to_string(kMaxStages) +
                "], got " + std::to_string(pp));
  if (m < 1 || m > kMaxMicroBatches)
    return fail(name + ": micro-batches must be in [1, " +
                std::to_string(kMaxMicroBatches) + "], got " +
                std::to_string(m));
  if (static_cast<long long>(pp) * m > kMaxChunks)
    return fail(name + ": pp x micro-batches exceeds " +
                std::to_string(kMaxChunks));
  bool dual = kind == ScheduleKind::DualPipe;
  if (dual || kind == ScheduleKind::DualPipeV) {
    if (pp % 2 != 0)
      return fail(name +
                  " needs an even pp (each rank holds stages r and "
                  "pp-1-r), got " +
                  std::to_string(pp));
    if (dual && (m % 2 != 0 || m < 2 * pp))
      return fail("dualpipe needs an even number of micro-batches >= 2 pp (" +
                  std::to_string(2 * pp) + "; half enter from each end), got " +
                  std::to_string(m));
    if (!dual && m < pp)
      return fail("dualpipev needs micro-batches >= pp (" + std::to_string(pp) +
                  "), got " + std::to_string(m));
  }
  return std::nullopt;
}

io::Expected<PipelineSchedule> generateSchedule(ScheduleKind kind, int pp,
                                                int microBatches) {
  if (io::Status error = checkScheduleSizes(kind, pp, microBatches))
    return *error;
  bool dual = kind == ScheduleKind::DualPipe || kind == ScheduleKind::DualPipeV;
  return dual ? detail::buildDualPipe(kind, pp, microBatches)
              : detail::buildOneFOneB(kind, pp, microBatches);
}

io::Expected<PipelineSchedule> oneFOneB(int pp, int microBatches) {
  return generateSchedule(ScheduleKind::OneFOneB, pp, microBatches);
}

io::Expected<PipelineSchedule> zeroBubble1P(int pp, int microBatches) {
  return generateSchedule(ScheduleKind::ZeroBubble1P, pp, microBatches);
}

io::Expected<PipelineSchedule> dualPipe(int pp, int microBatches) {
  return generateSchedule(ScheduleKind::DualPipe, pp, microBatches);
}

io::Expected<PipelineSchedule> dualPipeV(int pp, int microBatches) {
  return generateSchedule(ScheduleKind::DualPipeV, pp, microBatches);
}

} // namespace dsflow::schedule
