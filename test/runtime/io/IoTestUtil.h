//===- IoTestUtil.h - Helpers shared by the I/O tests -----------*- C++ -*-===//
#ifndef DSFLOW_TEST_RUNTIME_IO_IOTESTUTIL_H
#define DSFLOW_TEST_RUNTIME_IO_IOTESTUTIL_H

#include "io/Status.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace dsflow::io::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its content.
class TempDir {
public:
  TempDir() {
    const char *base = std::getenv("TMPDIR");
    std::string pattern =
        std::string(base && *base ? base : "/tmp") + "/dsflow-io-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    const char *made = ::mkdtemp(buffer.data());
    EXPECT_NE(made, nullptr) << "mkdtemp failed";
    dir = made ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!dir.empty())
      std::filesystem::remove_all(dir, ec);
  }
  TempDir(const TempDir &) = delete;
  TempDir &operator=(const TempDir &) = delete;

  const std::string &path() const { return dir; }
  std::string file(const std::string &name) const { return dir + "/" + name; }

  /// The names in the directory (or in `sub` below it), sorted.
  std::vector<std::string> list(const std::string &sub = "") const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &entry :
         std::filesystem::directory_iterator(sub.empty() ? dir : file(sub), ec))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

private:
  std::string dir;
};

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline std::string messageOf(const Status &status) {
  return status ? status->message : "<success>";
}
template <typename T> std::string messageOf(const Expected<T> &result) {
  return result ? "<success>" : result.error().message;
}

} // namespace dsflow::io::test

/// Expects `result` (a Status or Expected) to be an error whose one-line
/// message contains `part`.
#define EXPECT_IO_ERROR(result, part)                                          \
  do {                                                                         \
    std::string message_ = ::dsflow::io::test::messageOf(result);              \
    EXPECT_NE(message_.find(part), std::string::npos)                          \
        << "message: " << message_ << "\nexpected to contain: " << (part);     \
    EXPECT_EQ(message_.find('\n'), std::string::npos) << message_;             \
  } while (false)

/// Expects `result` (a Status or Expected) to be a success.
#define EXPECT_IO_OK(result)                                                   \
  EXPECT_EQ(::dsflow::io::test::messageOf(result), "<success>")

#endif // DSFLOW_TEST_RUNTIME_IO_IOTESTUTIL_H
