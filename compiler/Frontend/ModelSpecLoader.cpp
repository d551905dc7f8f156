//===- ModelSpecLoader.cpp - Read and validate model descriptions ---------===//
#include "ModelSpecLoader.h"
#include "SpecReaders.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

namespace dsflow {

const char *formatName(SpecFormat format) {
  switch (format) {
  case SpecFormat::TextProto:
    return "ModelSpec text proto";
  case SpecFormat::HuggingFaceConfig:
    return "Hugging Face config.json";
  case SpecFormat::InferenceConfig:
    return "DeepSeek inference config";
  }
  return "model description";
}

namespace {

bool isTextProtoName(llvm::StringRef name) {
  llvm::StringRef ext = llvm::sys::path::extension(name);
  return ext == ".pbtxt" || ext == ".textproto" || ext == ".txtpb";
}

/// A JSON description is a Hugging Face config when it names its model_type or
/// uses its spelling of the hidden size; DeepSeek's inference configs say "dim".
SpecFormat jsonFormat(const llvm::json::Object &object) {
  return object.get("model_type") || object.get("hidden_size")
             ? SpecFormat::HuggingFaceConfig
             : SpecFormat::InferenceConfig;
}

/// The model's name, when the description does not give one: the file's stem, or
/// its folder's name for a Hugging Face "config.json".
std::string defaultName(llvm::StringRef sourceName) {
  llvm::StringRef stem = llvm::sys::path::stem(sourceName);
  if (stem == "config") {
    llvm::StringRef dir =
        llvm::sys::path::filename(llvm::sys::path::parent_path(sourceName));
    if (!dir.empty() && dir != ".")
      return dir.str();
  }
  return stem.str();
}

} // namespace

std::optional<ModelSpec> parseModelSpec(const std::string &text,
                                        const std::string &sourceName,
                                        std::string &error) {
  ModelSpec spec;
  std::string why;
  FieldNamer names = [](llvm::StringRef path) { return path.str(); };
  bool ok;
  if (isTextProtoName(sourceName)) {
    ok = readTextSpec(text, spec, why);
  } else {
    llvm::Expected<llvm::json::Value> json = llvm::json::parse(text);
    if (!json) {
      error = sourceName + ": not valid JSON: " + llvm::toString(json.takeError());
      return std::nullopt;
    }
    const llvm::json::Object *object = json->getAsObject();
    if (!object) {
      error = sourceName + ": expected a JSON object at the top level, or a "
                           ".pbtxt ModelSpec";
      return std::nullopt;
    }
    if (jsonFormat(*object) == SpecFormat::HuggingFaceConfig) {
      ok = readHfConfig(*object, spec, why);
      names = hfConfigNamer();
    } else {
      ok = readInferenceConfig(*object, spec, why);
      names = inferenceConfigNamer();
    }
  }
  if (ok && spec.name().empty())
    spec.set_name(defaultName(sourceName));
  if (!ok || !validateSpec(spec, names, why)) {
    error = sourceName + ": " + why;
    return std::nullopt;
  }
  return spec;
}

std::optional<ModelSpec> loadModelSpec(const std::string &path,
                                       std::string &error) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> buffer =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer) {
    error = path + ": cannot read model description: " +
            buffer.getError().message();
    return std::nullopt;
  }
  return parseModelSpec((*buffer)->getBuffer().str(), path, error);
}

} // namespace dsflow
