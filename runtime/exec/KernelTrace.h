//===- KernelTrace.h - What the executor ran, as a Chrome trace -*- C++ -*-===//
//
// With a trace attached the executor records every kernel it runs: the plan's
// kernel index, its op and its wall-clock start and duration (microseconds of
// the system clock, so that ranks on one machine line up). chromeTraceEvents()
// turns them into trace-event JSON objects ("ph": "X", pid = rank), the format
// Perfetto and chrome://tracing read, the same dsflow-plan --trace writes for
// a schedule.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_EXEC_KERNELTRACE_H
#define DSFLOW_RUNTIME_EXEC_KERNELTRACE_H

#include <cstdint>
#include <string>
#include <vector>

namespace dsflow::exec {

struct KernelEvent {
  int32_t kernel = 0;
  std::string op;
  double startUs = 0, durationUs = 0;
};

/// The events as comma-separated trace-event objects of process `rank`.
std::string chromeTraceEvents(const std::vector<KernelEvent> &events, int rank);

} // namespace dsflow::exec

#endif // DSFLOW_RUNTIME_EXEC_KERNELTRACE_H
