//===- PlanFile.h - Reading and writing plan files --------------*- C++ -*-===//
//
// A plan file is a 32-byte frame followed by the serialized dsflow.Plan:
//   bytes 0-7   magic "DSFLOWPL"
//   bytes 8-11  format version (little-endian u32), kPlanFormatVersion
//   bytes 12-15 reserved, zero
//   bytes 16-23 payload length in bytes (u64)
//   bytes 24-31 FNV-1a 64 checksum of the payload (u64)
// The frame makes truncation and corruption detectable before protobuf parsing
// (protobuf alone happily parses a prefix of a message). Writing is atomic.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_PLAN_PLANFILE_H
#define DSFLOW_RUNTIME_PLAN_PLANFILE_H

#include "io/Status.h"
#include "schemas/plan.pb.h"

#include <string>
#include <vector>

namespace dsflow {

constexpr uint32_t kPlanFormatVersion = 1;
constexpr const char *kPlanFormatId = "dsflow.plan";

/// The plan as the bytes of a plan file.
std::string encodePlanFile(const Plan &plan);

/// Parses and validates the bytes of a plan file; `source` names it in errors.
io::Expected<Plan> decodePlanFile(const std::string &bytes,
                                  const std::string &source);

/// Writes `plan` to `path` atomically (nothing is left on failure).
io::Status writePlanFile(const std::string &path, const Plan &plan);

/// Reads, checks and validates the plan file at `path`.
io::Expected<Plan> readPlanFile(const std::string &path);

/// Structural checks of a decoded plan: indices in range, sizes consistent,
/// buffers inside their regions. Returns the first problem found.
io::Status validatePlan(const Plan &plan, const std::string &source);

/// Bytes per element of `dtype` (0 when unspecified).
int64_t dtypeBytes(DType dtype);

/// The number of elements of a buffer (1 for a scalar).
int64_t numElements(const Buffer &buffer);

/// The bytes a buffer of `dtype` and `shape` occupies: its elements' bytes,
/// plus for FP8 one 4-byte scale per 1x128 tile of the last dimension.
int64_t storageBytes(DType dtype, const std::vector<int64_t> &shape);

} // namespace dsflow

#endif // DSFLOW_RUNTIME_PLAN_PLANFILE_H
