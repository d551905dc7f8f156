//===- JsonSpecFields.cpp - Table-driven JSON -> ModelSpec mapping --------===//
#include "JsonSpecFields.h"

#include "llvm/ADT/SmallVector.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

namespace dsflow {

const char *jsonKindName(const llvm::json::Value &value) {
  switch (value.kind()) {
  case llvm::json::Value::Null:
    return "null";
  case llvm::json::Value::Boolean:
    return "a boolean";
  case llvm::json::Value::Number:
    return "a number";
  case llvm::json::Value::String:
    return "a string";
  case llvm::json::Value::Array:
    return "an array";
  case llvm::json::Value::Object:
    return "an object";
  }
  return "a value";
}

static std::string typeError(llvm::StringRef key, const char *expected,
                             const llvm::json::Value &value) {
  return "'" + key.str() + "': expected " + expected + ", got " +
         jsonKindName(value);
}

bool setSpecField(ModelSpec &spec, llvm::StringRef specPath,
                  const llvm::json::Value &value, llvm::StringRef key,
                  std::string &error) {
  llvm::SmallVector<llvm::StringRef> parts;
  specPath.split(parts, '.');
  Message *message = &spec;
  const FieldDescriptor *field = nullptr;
  for (size_t i = 0; i < parts.size(); ++i) {
    field = message->GetDescriptor()->FindFieldByName(parts[i].str());
    assert(field && "JSON table names a field ModelSpec lacks");
    if (i + 1 < parts.size())
      message = message->GetReflection()->MutableMessage(message, field);
  }
  const auto *reflection = message->GetReflection();
  switch (field->cpp_type()) {
  case FieldDescriptor::CPPTYPE_INT64:
    if (std::optional<int64_t> v = value.getAsInteger()) {
      reflection->SetInt64(message, field, *v);
      return true;
    }
    error = typeError(key, "an integer", value);
    return false;
  case FieldDescriptor::CPPTYPE_DOUBLE:
    if (std::optional<double> v = value.getAsNumber()) {
      reflection->SetDouble(message, field, *v);
      return true;
    }
    error = typeError(key, "a number", value);
    return false;
  case FieldDescriptor::CPPTYPE_BOOL:
    if (std::optional<bool> v = value.getAsBoolean()) {
      reflection->SetBool(message, field, *v);
      return true;
    }
    error = typeError(key, "a boolean", value);
    return false;
  case FieldDescriptor::CPPTYPE_STRING:
    if (std::optional<llvm::StringRef> v = value.getAsString()) {
      reflection->SetString(message, field, v->str());
      return true;
    }
    error = typeError(key, "a string", value);
    return false;
  default:
    assert(false && "JSON tables map only scalar fields");
    return false;
  }
}

bool readChoice(const llvm::json::Value &value, llvm::StringRef key,
                llvm::ArrayRef<llvm::StringRef> allowed, std::string &error,
                llvm::StringRef *chosen) {
  std::optional<llvm::StringRef> s = value.getAsString();
  if (!s) {
    error = typeError(key, "a string", value);
    return false;
  }
  for (llvm::StringRef a : allowed)
    if (*s == a) {
      if (chosen)
        *chosen = a;
      return true;
    }
  error = "'" + key.str() + "': unsupported value '" + s->str() + "' (expected";
  for (size_t i = 0; i < allowed.size(); ++i)
    error += (i ? ", '" : " '") + allowed[i].str() + "'";
  error += ")";
  return false;
}

const JsonField *findJsonField(llvm::ArrayRef<JsonField> table,
                               llvm::StringRef key) {
  for (const JsonField &field : table)
    if (key == field.key)
      return &field;
  return nullptr;
}

FieldNamer namerFromTable(llvm::ArrayRef<JsonField> table) {
  return [table](llvm::StringRef specPath) -> std::string {
    for (const JsonField &field : table)
      if (specPath == field.specPath)
        return std::string(field.key) + " (" + specPath.str() + ")";
    return specPath.str();
  };
}

} // namespace dsflow
