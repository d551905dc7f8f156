//===- AtomicFile.h - Crash-safe replacement of a file ----------*- C++ -*-===//
//
// writeFileAtomically writes a temporary file in the target's directory
// (".NAME.tmp-PID-N"), fsyncs it, renames it over the target and fsyncs the
// directory. After a crash at any point, the target holds either its old
// content or the complete new content. On failure the temporary file is removed
// and an existing target is left untouched.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_IO_ATOMICFILE_H
#define DSFLOW_IO_ATOMICFILE_H

#include "io/ByteSink.h"
#include "io/Status.h"

#include <functional>
#include <string>

namespace dsflow::io {

/// Produces the content of a file; an error it returns aborts the write.
using FileWriter = std::function<Status(ByteSink &)>;

/// What was written: the size and FNV-1a 64 checksum of the file.
struct FileDigest {
  uint64_t bytes = 0;
  uint64_t fnv1a64 = 0;
};

/// Replaces `path` with what `writer` produces, atomically (see above).
Status writeFileAtomically(const std::string &path, const FileWriter &writer,
                           FileDigest *digest = nullptr);

/// Replaces `path` with `contents`, atomically.
Status writeFileAtomically(const std::string &path,
                           const std::string &contents);

/// fsyncs the directory `dir`, making renames and creations in it durable.
Status syncDirectory(const std::string &dir);

/// True if the file name `name` has the form of writeFileAtomically's
/// temporaries.
bool isAtomicTempName(const std::string &name);

} // namespace dsflow::io

#endif // DSFLOW_IO_ATOMICFILE_H
