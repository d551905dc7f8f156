//===- TimelineSvg.h - A schedule drawn as DeepSeek draws it ----*- C++ -*-===//
//
// One row per rank, one cell per compute instruction, as wide as it ran in the
// simulation and labelled with its micro-batch's number within its direction:
// F, B, the input-gradient part Bi and W in their own colours, DualPipe's
// reverse direction in lighter shades (DeepSeek-V3 report, figure 5), and an
// overlapped F&B pair as its forward and backward cells (in proportion
// F : B) inside one black border. A time axis below, a legend, and a title
// line. The same schedule and times give the same bytes.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_TIMELINESVG_H
#define DSFLOW_COMPILER_SCHEDULE_TIMELINESVG_H

#include "Schedule/PipelineSchedule.h"
#include "Schedule/ScheduleSimulation.h"

#include <string>

namespace dsflow::schedule {

std::string timelineSvg(const PipelineSchedule &schedule,
                        const SimulationResult &result, const ChunkCosts &costs,
                        const std::string &title);

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_TIMELINESVG_H
