//===- ScheduleFlag.h - The pipeline schedules as command-line values -*- C++
//-*-===//
//
// One list of the schedules' flag names and descriptions for dsflow-compile
// (--pipeline-schedule) and dsflow-schedule (--schedule).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TOOLS_SCHEDULEFLAG_H
#define DSFLOW_TOOLS_SCHEDULEFLAG_H

#include "Schedule/PipelineSchedule.h"

#include "llvm/Support/CommandLine.h"

namespace dsflow {

inline llvm::cl::ValuesClass scheduleKindValues() {
  using schedule::ScheduleKind;
  return llvm::cl::values(
      clEnumValN(ScheduleKind::OneFOneB, "1f1b", "one forward, one backward"),
      clEnumValN(ScheduleKind::ZeroBubble1P, "zb1p",
                 "ZB-H1: 1F1B with weight gradients deferred"),
      clEnumValN(ScheduleKind::DualPipe, "dualpipe",
                 "DeepSeek-V3's bidirectional schedule (pp ranks)"),
      clEnumValN(ScheduleKind::DualPipeV, "dualpipev",
                 "DualPipe folded into a V (pp/2 ranks)"));
}

} // namespace dsflow

#endif // DSFLOW_TOOLS_SCHEDULEFLAG_H
