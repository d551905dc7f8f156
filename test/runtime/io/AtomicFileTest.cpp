//===- AtomicFileTest.cpp - Crash-safe file replacement and checksums -----===//
#include "IoTestUtil.h"

#include "io/AtomicFile.h"
#include "io/FileUtil.h"
#include "io/Fnv1a.h"

namespace dsflow::io {
namespace {

using test::readFile;
using test::TempDir;
using test::writeFile;

TEST(Fnv1a, KnownVectors) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
  // Streaming in pieces gives the same hash.
  EXPECT_EQ(fnv1a64("bar", 3, fnv1a64("foo", 3)), 0x85944171f73967e8ull);
}

TEST(AtomicFile, CreatesAndReplaces) {
  TempDir dir;
  std::string path = dir.file("out.txt");
  EXPECT_IO_OK(writeFileAtomically(path, std::string("first")));
  EXPECT_EQ(readFile(path), "first");
  EXPECT_IO_OK(writeFileAtomically(path, std::string("second, longer")));
  EXPECT_EQ(readFile(path), "second, longer");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"out.txt"})
      << "no temporary left behind";
}

TEST(AtomicFile, ReportsSizeAndChecksum) {
  TempDir dir;
  FileDigest digest;
  EXPECT_IO_OK(writeFileAtomically(
      dir.file("d"),
      [](ByteSink &sink) {
        if (Status error = sink.write("foo", 3))
          return error;
        return sink.write("bar", 3);
      },
      &digest));
  EXPECT_EQ(digest.bytes, 6u);
  EXPECT_EQ(digest.fnv1a64, 0x85944171f73967e8ull);
}

TEST(AtomicFile, WriterFailingHalfwayLeavesTheTargetUntouched) {
  TempDir dir;
  std::string path = dir.file("model.bin");
  writeFile(path, "old complete content");
  Status error = writeFileAtomically(path, [](ByteSink &sink) -> Status {
    if (Status e = sink.write("half of the new", 15))
      return e;
    return IoError{"simulated failure after 15 bytes"};
  });
  EXPECT_IO_ERROR(error, "simulated failure after 15 bytes");
  EXPECT_EQ(readFile(path), "old complete content");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"model.bin"})
      << "the temporary was removed";
}

TEST(AtomicFile, WriterFailingCreatesNothing) {
  TempDir dir;
  Status error = writeFileAtomically(
      dir.file("new.bin"), [](ByteSink &) -> Status { return IoError{"no"}; });
  EXPECT_IO_ERROR(error, "no");
  EXPECT_TRUE(dir.list().empty());
}

TEST(AtomicFile, MissingDirectory) {
  TempDir dir;
  EXPECT_IO_ERROR(writeFileAtomically(dir.file("absent/x"), std::string("x")),
                  "/absent/x: cannot create temporary file");
}

TEST(AtomicFile, TargetIsADirectory) {
  TempDir dir;
  ASSERT_EQ(::mkdir(dir.file("sub").c_str(), 0755), 0);
  writeFile(dir.file("sub/keep"), "k");
  EXPECT_IO_ERROR(writeFileAtomically(dir.file("sub"), std::string("x")),
                  "/sub: cannot rename");
  EXPECT_EQ(readFile(dir.file("sub/keep")), "k");
  EXPECT_EQ(dir.list(), std::vector<std::string>{"sub"});
}

TEST(AtomicFile, TempNames) {
  EXPECT_TRUE(isAtomicTempName(".latest.tmp-12-0"));
  EXPECT_TRUE(isAtomicTempName(".tmp-step-5-99"));
  EXPECT_FALSE(isAtomicTempName("latest"));
  EXPECT_FALSE(isAtomicTempName("step-5"));
}

TEST(FileUtil, PathParts) {
  EXPECT_EQ(parentDirectory("a/b/c.txt"), "a/b");
  EXPECT_EQ(parentDirectory("a/b/"), "a");
  EXPECT_EQ(parentDirectory("c.txt"), ".");
  EXPECT_EQ(parentDirectory("/c"), "/");
  EXPECT_EQ(baseName("a/b/c.txt"), "c.txt");
  EXPECT_EQ(baseName("a/b/"), "b");
  EXPECT_EQ(joinPath("a/", "b"), "a/b");
  EXPECT_EQ(joinPath("a", "b"), "a/b");
  EXPECT_EQ(joinPath("", "b"), "b");
}

} // namespace
} // namespace dsflow::io
