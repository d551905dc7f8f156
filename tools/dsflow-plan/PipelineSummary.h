//===- PipelineSummary.h - dsflow-plan's pipeline analysis ------*- C++ -*-===//
//
// For a plan with pipeline stages: generates the recorded schedule for the
// plan's micro-batches, simulates it with chunk costs in units of the
// costliest stage's forward (F = 1, B = 2, W = 1, F&B = F + B: the compute of
// both halves, their communication hidden), and prints the bubble fraction and
// each pipeline rank's estimated memory (compiler/Stages/RankMemory.h) against
// an 80 GB GPU. Optionally draws the timeline (SVG) and writes a Chrome trace.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TOOLS_DSFLOW_PLAN_PIPELINESUMMARY_H
#define DSFLOW_TOOLS_DSFLOW_PLAN_PIPELINESUMMARY_H

#include "io/Status.h"
#include "schemas/plan.pb.h"

#include <string>

namespace dsflow {

/// Prints the analysis; writes `timelinePath` / `tracePath` when not empty.
io::Status printPipelineSummary(const Plan &plan,
                                const std::string &timelinePath,
                                const std::string &tracePath);

} // namespace dsflow

#endif // DSFLOW_TOOLS_DSFLOW_PLAN_PIPELINESUMMARY_H
