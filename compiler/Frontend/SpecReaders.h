//===- SpecReaders.h - The per-format model description readers -*- C++ -*-===//
//
// Internal to the frontend. Each reader fills a ModelSpec from one format and
// reports errors without the file name (the loader adds it). Each also says how a
// ModelSpec field was spelled in its format, so validation errors use the user's
// names.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_FRONTEND_SPECREADERS_H
#define DSFLOW_FRONTEND_SPECREADERS_H

#include "schemas/model.pb.h"

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/JSON.h"

#include <functional>
#include <string>

namespace dsflow {

/// Maps a ModelSpec field path ("moe.expert_groups") to the name a user wrote.
using FieldNamer = std::function<std::string(llvm::StringRef specPath)>;

bool readTextSpec(llvm::StringRef text, ModelSpec &spec, std::string &error);
bool readHfConfig(const llvm::json::Object &config, ModelSpec &spec,
                  std::string &error);
bool readInferenceConfig(const llvm::json::Object &config, ModelSpec &spec,
                         std::string &error);

FieldNamer hfConfigNamer();
FieldNamer inferenceConfigNamer();

/// Checks every consistency rule; returns false and sets `error` to
/// "FIELD: rule" for the first rule broken.
bool validateSpec(const ModelSpec &spec, const FieldNamer &names,
                  std::string &error);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_SPECREADERS_H
