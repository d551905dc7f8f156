//===- ExpertLoads.h - Tokens per routed expert, per MoE layer --*- C++ -*-===//
//
// The loads file records how many tokens each routed expert received in each
// MoE layer over a training run. dsflow-run writes it (--expert-loads FILE) and
// the expert placement pass (compiler/Placement) reads it:
//
//   {"format": "dsflow.expert_loads", "model": "small-v3", "steps": 300,
//    "layers": [{"layer": 1, "loads": [8120, 7904, ...]}, ...]}
//
// "layer" is the model's layer index (MTP module k is layer num_layers + k -
// 1); "loads" has one non-negative integer per routed expert, the same count in
// every layer. Unknown keys are errors, as in model descriptions.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_EXPERTLOADS_H
#define DSFLOW_IO_EXPERTLOADS_H

#include "io/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsflow::io {

inline constexpr const char *kExpertLoadsFormat = "dsflow.expert_loads";

struct LayerLoads {
  int64_t layer = 0;
  /// Tokens routed to each expert, indexed by logical expert.
  std::vector<int64_t> loads;
};

struct ExpertLoads {
  std::string model;
  /// Training steps the counts were summed over.
  int64_t steps = 0;
  std::vector<LayerLoads> layers;
};

/// The file's text (JSON, one layer per line).
std::string encodeExpertLoads(const ExpertLoads &loads);

/// Writes `loads` to `path` atomically.
Status writeExpertLoads(const std::string &path, const ExpertLoads &loads);

/// Parses and checks a loads file's text; `source` names it in errors.
Expected<ExpertLoads> parseExpertLoads(const std::string &text,
                                       const std::string &source);

/// Reads and checks the loads file at `path`.
Expected<ExpertLoads> readExpertLoads(const std::string &path);

} // namespace dsflow::io

#endif // DSFLOW_IO_EXPERTLOADS_H
