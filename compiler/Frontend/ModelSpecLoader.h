//===- ModelSpecLoader.h - Read and validate model descriptions -*- C++ -*-===//
//
// The entry point for model descriptions in every format dsflow accepts: the native
// protobuf text format (.pbtxt), Hugging Face config.json (model_type deepseek_v3)
// and DeepSeek's inference config JSON. Errors are one line naming the file, the
// field and the rule broken.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_FRONTEND_MODELSPECLOADER_H
#define DSFLOW_FRONTEND_MODELSPECLOADER_H

#include "schemas/model.pb.h"

#include <optional>
#include <string>

namespace dsflow {

enum class SpecFormat { TextProto, HuggingFaceConfig, InferenceConfig };

/// Reads, parses and validates the model description at `path`. Returns nullopt
/// and sets `error` ("PATH: FIELD: rule") when anything is wrong.
std::optional<ModelSpec> loadModelSpec(const std::string &path,
                                       std::string &error);

/// The same for text already in memory; `sourceName` is used in errors and, by its
/// extension, to choose between text proto (.pbtxt, .textproto) and JSON.
std::optional<ModelSpec> parseModelSpec(const std::string &text,
                                        const std::string &sourceName,
                                        std::string &error);

/// The display name of a format, for messages.
const char *formatName(SpecFormat format);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_MODELSPECLOADER_H
