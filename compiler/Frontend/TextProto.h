//===- TextProto.h - Protobuf text format with one-line errors --*- C++ -*-===//
#ifndef DSFLOW_FRONTEND_TEXTPROTO_H
#define DSFLOW_FRONTEND_TEXTPROTO_H

#include "llvm/ADT/StringRef.h"

#include <google/protobuf/message.h>

#include <string>

namespace dsflow {

/// Parses `text` into `message`; on failure sets `error` to the parser's first
/// error with its position ("line L:C: message").
bool readTextProto(llvm::StringRef text, google::protobuf::Message &message,
                   std::string &error);

} // namespace dsflow

#endif // DSFLOW_FRONTEND_TEXTPROTO_H
