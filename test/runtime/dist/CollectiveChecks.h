//===- CollectiveChecks.h - Every collective against local values -*- C++
//-*-===//
//
// Run by every rank of a multi-process test. Each rank's input is a function
// of (rank, index), so every rank can compute every other rank's input and
// hence the exact expected result, which is compared bitwise.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_TEST_RUNTIME_DIST_COLLECTIVECHECKS_H
#define DSFLOW_TEST_RUNTIME_DIST_COLLECTIVECHECKS_H

#include "dist/Communicator.h"

#include <string>
#include <vector>

namespace dsflow::dist::test {

struct CheckReport {
  int passed = 0;
  /// "check name: what differs", one per failed check.
  std::vector<std::string> failures;
};

/// Runs every check on `comm` (any size; the 2 x 2 grid split needs an even
/// size). Stops at the first communicator error, which is a failure.
CheckReport runCollectiveChecks(Communicator &comm);

} // namespace dsflow::dist::test

#endif // DSFLOW_TEST_RUNTIME_DIST_COLLECTIVECHECKS_H
