//===- PlanCheck.h - Do all ranks run the same plan? ------------*- C++ -*-===//
#ifndef DSFLOW_DIST_PLANCHECK_H
#define DSFLOW_DIST_PLANCHECK_H

#include "dist/Communicator.h"

namespace dsflow::dist {

/// Collective: gathers every rank's `planHash` and compares it with rank 0's.
/// On a mismatch every rank returns the same error naming the ranks that
/// differ: "plan check: rank 3 loaded a different plan (hash 0x1f.. vs rank
/// 0's 0x2a..)". `what` names the thing hashed ("plan", "checkpoint").
io::Status checkSamePlan(Communicator &comm, uint64_t planHash,
                         const std::string &what = "plan");

} // namespace dsflow::dist

#endif // DSFLOW_DIST_PLANCHECK_H
