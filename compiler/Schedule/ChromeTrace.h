//===- ChromeTrace.h - A simulated schedule as trace-event JSON -*- C++ -*-===//
//
// Chrome's trace-event format, which Perfetto and chrome://tracing load: one
// process per rank, thread 0 for compute and thread 1 for communication, one
// complete ("ph":"X") event per instruction (a receive spans the time its rank
// waited for the message). An F&B pair also gets its four overlap steps: the
// compute sub-chunk on the compute thread and the all-to-all it hides on the
// communication thread. One unit of simulated time is one millisecond.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_SCHEDULE_CHROMETRACE_H
#define DSFLOW_COMPILER_SCHEDULE_CHROMETRACE_H

#include "Schedule/PipelineSchedule.h"
#include "Schedule/ScheduleSimulation.h"

#include <string>

namespace dsflow::schedule {

std::string chromeTraceJson(const PipelineSchedule &schedule,
                            const SimulationResult &result);

} // namespace dsflow::schedule

#endif // DSFLOW_COMPILER_SCHEDULE_CHROMETRACE_H
