//===- LossLog.h - The CSV of every step's losses (--loss-log) --*- C++ -*-===//
//
// A resumed run appends to the log of the run it continues. That run may
// have been killed after its latest checkpoint: its rows past the
// checkpoint's step are trained again, and its last row may be cut off
// mid-line. Before appending, the log is rewritten (atomically) with only
// the header and the complete rows up to the checkpoint's step, so that a
// resumed log reads as one uninterrupted run's.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_TRAIN_LOSSLOG_H
#define DSFLOW_RUNTIME_TRAIN_LOSSLOG_H

#include "io/Status.h"

#include <cstdint>
#include <string>

namespace dsflow::train {

/// The loss log's first line.
inline constexpr const char *kLossLogHeader =
    "step,loss,lm_loss,mtp_loss,val_loss,lr,imbalance";

/// Keeps the header and the complete rows of steps up to `lastStep` of the
/// log at `path` (none there: a log of just the header). A row that does not
/// start with a step number is an error naming its line.
io::Status trimLossLog(const std::string &path, int64_t lastStep);

} // namespace dsflow::train

#endif // DSFLOW_RUNTIME_TRAIN_LOSSLOG_H
