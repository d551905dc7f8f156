//===- LossLogTest.cpp - A resumed run's loss log -------------------------===//
//
// trimLossLog keeps the header and the complete rows up to the checkpoint's
// step: a killed run's later rows and its half-written last row go, and a
// file that is not a loss log is refused with its line, left as it was.
//
//===----------------------------------------------------------------------===//
#include "train/LossLog.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

namespace dsflow {
namespace {

std::string header() { return std::string(train::kLossLogHeader) + "\n"; }

class LossLog : public ::testing::Test {
protected:
  void SetUp() override {
    dir = std::filesystem::temp_directory_path() /
          ("dsflow-losslog-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    path = (dir / "loss.csv").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir); }
  void write(const std::string &text) { std::ofstream(path) << text; }
  std::string read() {
    std::stringstream s;
    s << std::ifstream(path).rdbuf();
    return s.str();
  }
  std::filesystem::path dir;
  std::string path;
};

TEST_F(LossLog, AKilledRunsLaterAndCutOffRowsGo) {
  write(header() + "1,5.0,4.0,1.0,,0.001,1.1\n2,4.5,3.9,0.9,,0.001,1.2\n" +
        "3,4.4,3.8,0.9,,0.001,1.2\n4,4.3,3.");
  ASSERT_FALSE(train::trimLossLog(path, 2));
  EXPECT_EQ(read(),
            header() + "1,5.0,4.0,1.0,,0.001,1.1\n2,4.5,3.9,0.9,,0.001,1.2\n");
}

TEST_F(LossLog, ALogUpToTheCheckpointStaysAsItIs) {
  std::string log = header() + "1,5.0,4.0,1.0,,0.001,1.1\n";
  write(log);
  ASSERT_FALSE(train::trimLossLog(path, 1));
  EXPECT_EQ(read(), log);
}

TEST_F(LossLog, ANewLogForAResumedRunStartsWithTheHeader) {
  ASSERT_FALSE(train::trimLossLog(path, 6));
  EXPECT_EQ(read(), header());
}

TEST_F(LossLog, NotALossLogIsRefusedAndKept) {
  std::string text = header() + "1,5.0\nhello,world\n";
  write(text);
  io::Status e = train::trimLossLog(path, 1);
  ASSERT_TRUE(e);
  EXPECT_NE(e->message.find("loss.csv:3"), std::string::npos) << e->message;
  EXPECT_EQ(read(), text);
}

} // namespace
} // namespace dsflow
