//===- JsonSpecFields.h - Table-driven JSON -> ModelSpec mapping -*- C++ -*-===//
//
// Both JSON formats are mostly flat key -> field renamings. A reader lists them in
// a table; the helpers here set the fields through protobuf reflection with type
// checks, and turn the table around to name fields in validation errors.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_FRONTEND_JSONSPECFIELDS_H
#define DSFLOW_FRONTEND_JSONSPECFIELDS_H

#include "SpecReaders.h"

#include "llvm/ADT/ArrayRef.h"

namespace dsflow {

/// One JSON key stored verbatim in a ModelSpec field (path like "moe.route_scale").
struct JsonField {
  const char *key;
  const char *specPath;
};

/// Sets the scalar field at `specPath` from `value`; the JSON type must fit the
/// field (integer for int64, number for double, bool for bool, string for string).
bool setSpecField(ModelSpec &spec, llvm::StringRef specPath,
                  const llvm::json::Value &value, llvm::StringRef key,
                  std::string &error);

/// Looks `key` up in `table`; returns nullptr when absent.
const JsonField *findJsonField(llvm::ArrayRef<JsonField> table,
                               llvm::StringRef key);

/// Names a field as "json_key (spec.path)" when the table maps it, else spec.path.
FieldNamer namerFromTable(llvm::ArrayRef<JsonField> table);

/// Checks that `value` is one of the strings in `allowed`; `chosen` (if given)
/// receives it. The error lists the allowed values.
bool readChoice(const llvm::json::Value &value, llvm::StringRef key,
                llvm::ArrayRef<llvm::StringRef> allowed, std::string &error,
                llvm::StringRef *chosen = nullptr);

/// The JSON value's type, for "expected X, got Y" messages.
const char *jsonKindName(const llvm::json::Value &value);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_JSONSPECFIELDS_H
