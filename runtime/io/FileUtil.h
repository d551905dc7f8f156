//===- FileUtil.h - Small POSIX file helpers --------------------*- C++ -*-===//
#ifndef DSFLOW_IO_FILEUTIL_H
#define DSFLOW_IO_FILEUTIL_H

#include "io/Status.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsflow::io {

/// Reads the whole regular file at `path`.
Expected<std::vector<uint8_t>> readWholeFile(const std::string &path);

/// `dir` + "/" + `name` (no separator added after an empty `dir`).
std::string joinPath(const std::string &dir, const std::string &name);

/// The directory part of `path` ("." when it has none).
std::string parentDirectory(const std::string &path);

/// The last component of `path`.
std::string baseName(const std::string &path);

/// True if something (file, directory, link) exists at `path`.
bool pathExists(const std::string &path);

/// Removes `path` and, for a directory, everything below it.
Status removeTree(const std::string &path);

/// strerror(err) as a std::string.
std::string errnoText(int err);

} // namespace dsflow::io

#endif // DSFLOW_IO_FILEUTIL_H
