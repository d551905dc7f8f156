//===- Checkpoint.h - Crash-safe training checkpoints -----------*- C++ -*-===//
//
// A checkpoint directory holds one directory per saved step and a pointer file:
//
//   DIR/latest                   "step-200\n", replaced atomically
//   DIR/step-200/
//     model.safetensors          parameters, Hugging Face names
//     optimizer.safetensors      optimizer state
//     manifest.json              step, format version, resume state and, per
//                                file, its size and FNV-1a 64 checksum
//
// saveCheckpoint writes the step into a temporary directory ".tmp-step-N-PID",
// fsyncs every file and the directory, renames it to "step-N", and only then
// replaces `latest`. A crash at any point leaves `latest` naming the previous
// complete checkpoint; the temporaries it leaves are removed by the next save.
// One process saves into a directory at a time.
//
// loadLatestCheckpoint follows `latest` and refuses, with a one-line error, a
// checkpoint with a missing, truncated or corrupted piece.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_CHECKPOINT_H
#define DSFLOW_IO_CHECKPOINT_H

#include "io/Safetensors.h"
#include "io/SafetensorsWriter.h"
#include "io/Status.h"

#include <string>
#include <vector>

namespace dsflow::io {

/// The manifest format this build writes and reads.
constexpr int kCheckpointFormatVersion = 1;

/// Where training resumes; opaque to the checkpoint (e.g. BatchSampler state).
struct ResumeState {
  std::string dataPosition;
  std::string rngState;
};

/// A loaded, verified checkpoint.
struct Checkpoint {
  std::string path; ///< The step directory.
  int64_t step = 0;
  int formatVersion = 0;
  ResumeState resume;
  SafetensorsFile model;
  SafetensorsFile optimizer;
};

/// "step-N", the directory name of step N.
std::string checkpointDirName(int64_t step);

/// Saves step `step` under `dir` (created if missing) and points `latest` at
/// it. Replaces an existing step-N unless `latest` names it.
Status saveCheckpoint(const std::string &dir, int64_t step,
                      const std::vector<TensorRef> &model,
                      const std::vector<TensorRef> &optimizer,
                      const ResumeState &resume);

/// Points `latest` back at step `step`, which must exist: training continues
/// from it, and saving a newer step replaces the one left there.
Status rewindCheckpoint(const std::string &dir, int64_t step);

/// True if `dir` has a `latest` pointer (training should resume from it).
bool hasCheckpoint(const std::string &dir);

/// Loads and verifies the checkpoint `latest` names.
Expected<Checkpoint> loadLatestCheckpoint(const std::string &dir);

/// Loads and verifies the checkpoint in the step directory `stepDir`.
Expected<Checkpoint> loadCheckpoint(const std::string &stepDir);

} // namespace dsflow::io

#endif // DSFLOW_IO_CHECKPOINT_H
