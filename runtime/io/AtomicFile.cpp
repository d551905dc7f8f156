//===- AtomicFile.cpp - Crash-safe replacement of a file ------------------===//
#include "io/AtomicFile.h"

#include "io/FileUtil.h"

#include <atomic>
#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace dsflow::io {

namespace {
/// Writes to an open file descriptor; errors name the final path.
class FileSink : public ByteSink {
public:
  FileSink(int fd, std::string path) : fd(fd), path(std::move(path)) {}

protected:
  Status writeBytes(const void *data, size_t size) override {
    const char *bytes = static_cast<const char *>(data);
    while (size > 0) {
      ssize_t done = ::write(fd, bytes, size);
      if (done < 0 && errno == EINTR)
        continue;
      if (done < 0)
        return makeError(path, "write failed: " + errnoText(errno));
      bytes += done;
      size -= static_cast<size_t>(done);
    }
    return std::nullopt;
  }

private:
  int fd;
  std::string path;
};
} // namespace

static constexpr const char *kTempMarker = ".tmp-";

static std::string tempPathFor(const std::string &path) {
  static std::atomic<uint64_t> counter{0};
  return joinPath(parentDirectory(path), "." + baseName(path) + kTempMarker +
                                             std::to_string(::getpid()) + "-" +
                                             std::to_string(counter++));
}

bool isAtomicTempName(const std::string &name) {
  return !name.empty() && name[0] == '.' &&
         name.find(kTempMarker) != std::string::npos;
}

Status syncDirectory(const std::string &dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return makeError(dir, "cannot open directory: " + errnoText(errno));
  int rc;
  do
    rc = ::fsync(fd);
  while (rc != 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory; that is not a write error.
  if (rc != 0 && err != EINVAL && err != ENOTSUP)
    return makeError(dir, "fsync of directory failed: " + errnoText(err));
  return std::nullopt;
}

Status writeFileAtomically(const std::string &path, const FileWriter &writer,
                           FileDigest *digest) {
  if (path.empty() || path.back() == '/')
    return makeError(path, "not a file name");
  std::string temp = tempPathFor(path);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return makeError(path, "cannot create temporary file " + temp + ": " +
                               errnoText(errno));
  auto fail = [&](IoError error) -> Status {
    if (fd >= 0)
      ::close(fd);
    ::unlink(temp.c_str());
    return error;
  };

  FileSink sink(fd, path);
  if (Status error = writer(sink))
    return fail(*error);
  int rc;
  do
    rc = ::fsync(fd);
  while (rc != 0 && errno == EINTR);
  if (rc != 0)
    return fail(makeError(path, "fsync failed: " + errnoText(errno)));
  rc = ::close(fd);
  fd = -1;
  if (rc != 0)
    return fail(makeError(path, "close failed: " + errnoText(errno)));
  if (::rename(temp.c_str(), path.c_str()) != 0)
    return fail(makeError(path, "cannot rename " + temp +
                                    " over it: " + errnoText(errno)));
  if (digest)
    *digest = FileDigest{sink.bytesWritten(), sink.checksum()};
  return syncDirectory(parentDirectory(path));
}

Status writeFileAtomically(const std::string &path,
                           const std::string &contents) {
  return writeFileAtomically(path, [&](ByteSink &sink) {
    return sink.write(contents.data(), contents.size());
  });
}

} // namespace dsflow::io
