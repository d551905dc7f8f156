//===- FileUtil.cpp - Small POSIX file helpers ----------------------------===//
#include "io/FileUtil.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

namespace dsflow::io {

std::string errnoText(int err) { return std::strerror(err); }

Expected<std::vector<uint8_t>> readWholeFile(const std::string &path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return makeError(path, "cannot open: " + errnoText(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return makeError(path, "cannot stat: " + errnoText(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return makeError(path, "not a regular file");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t got = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (got < 0 && errno == EINTR)
      continue;
    if (got < 0) {
      int err = errno;
      ::close(fd);
      return makeError(path, "read failed: " + errnoText(err));
    }
    if (got == 0) {
      ::close(fd);
      return makeError(path, "file shrank while reading (" +
                                 std::to_string(done) + " of " +
                                 std::to_string(bytes.size()) + " bytes)");
    }
    done += static_cast<size_t>(got);
  }
  ::close(fd);
  return bytes;
}

std::string joinPath(const std::string &dir, const std::string &name) {
  if (dir.empty())
    return name;
  if (dir.back() == '/')
    return dir + name;
  return dir + "/" + name;
}

/// `path` without trailing slashes ("/" stays "/").
static std::string trimSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/')
    path.pop_back();
  return path;
}

std::string parentDirectory(const std::string &original) {
  std::string path = trimSlashes(original);
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return ".";
  if (slash == 0)
    return "/";
  return path.substr(0, slash);
}

std::string baseName(const std::string &original) {
  std::string path = trimSlashes(original);
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool pathExists(const std::string &path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Status removeTree(const std::string &path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
  if (ec)
    return makeError(path, "cannot remove: " + ec.message());
  return std::nullopt;
}

} // namespace dsflow::io
