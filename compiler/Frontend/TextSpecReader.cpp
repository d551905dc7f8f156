//===- TextSpecReader.cpp - ModelSpec from protobuf text format -----------===//
#include "SpecReaders.h"
#include "TextProto.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

namespace dsflow {
namespace {

/// Keeps the parser's first error with its position (protobuf counts from 0).
class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
public:
  void AddError(int line, int column, const std::string &message) override {
    if (first.empty())
      first = "line " + std::to_string(line + 1) + ":" +
              std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, int, const std::string &) override {}
  std::string first;
};

} // namespace

bool readTextProto(llvm::StringRef text, google::protobuf::Message &message,
                   std::string &error) {
  google::protobuf::TextFormat::Parser parser;
  FirstErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (parser.ParseFromString(std::string(text), &message))
    return true;
  error = errors.first.empty()
              ? "not a valid " + message.GetTypeName() + " text proto"
              : errors.first;
  return false;
}

bool readTextSpec(llvm::StringRef text, ModelSpec &spec, std::string &error) {
  return readTextProto(text, spec, error);
}

} // namespace dsflow
