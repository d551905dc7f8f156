//===- TcpProtocolTest.cpp - The TCP communicator's error paths -----------===//
//
// Ranks disagreeing with each other (collectives, sizes, RANK, WORLD_SIZE)
// must all fail with the same precise one-line error rather than hang. Each
// test forks its ranks; the collectives themselves are tested by
// dsflow-dist-tests under launch_local.py.
//
//===----------------------------------------------------------------------===//
#include "dist/Socket.h"
#include "dist/TcpCommunicator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace dsflow::dist {
namespace {

struct RankOutcome {
  int exitCode = -1; // -1: killed after hanging
  std::string output;
};

int freePort() {
  auto s = listenOn(0);
  return s.ok() ? localPort(*s) : 29999;
}

/// Forks one process per body; each gets its index and writes what it wants
/// checked to `out`. Processes still running after 20 s are killed.
std::vector<RankOutcome>
runRanks(const std::vector<std::function<int(FILE *out)>> &bodies) {
  std::vector<pid_t> pids;
  std::vector<std::string> files;
  for (size_t i = 0; i < bodies.size(); ++i) {
    char path[] = "/tmp/dsflow-tcp-test-XXXXXX";
    int fd = ::mkstemp(path);
    files.push_back(path);
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      FILE *out = ::fdopen(fd, "w");
      int code = bodies[i](out);
      std::fflush(out);
      std::_Exit(code);
    }
    ::close(fd);
    pids.push_back(pid);
  }
  std::vector<RankOutcome> outcomes(bodies.size());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (size_t i = 0; i < pids.size(); ++i) {
    int status = 0;
    while (::waitpid(pids[i], &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pids[i], SIGKILL);
        ::waitpid(pids[i], &status, 0);
        status = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    outcomes[i].exitCode =
        status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream in(files[i]);
    std::stringstream text;
    text << in.rdbuf();
    outcomes[i].output = text.str();
    ::unlink(files[i].c_str());
  }
  return outcomes;
}

/// A rank body: connects as `rank` of `size`, runs `work`, prints its error.
std::function<int(FILE *)>
rank(int port, int r, int size,
     std::function<io::Status(Communicator &)> work) {
  return [=](FILE *out) {
    TcpWorldOptions options{r, size, "127.0.0.1", port, 5.0};
    auto comm = connectTcpWorld(options);
    if (!comm.ok()) {
      std::fprintf(out, "%s", comm.error().message.c_str());
      return 1;
    }
    if (io::Status s = work(**comm)) {
      std::fprintf(out, "%s", s->message.c_str());
      return 1;
    }
    return 0;
  };
}

TEST(TcpProtocol, DifferentCollectivesFailEveryRank) {
  int port = freePort();
  auto barrier = [](Communicator &c) { return c.barrier(); };
  auto outcomes = runRanks({rank(port, 0, 3, barrier),
                            rank(port, 1, 3,
                                 [](Communicator &c) {
                                   char byte = 0;
                                   return c.broadcast(&byte, 1, 0);
                                 }),
                            rank(port, 2, 3, barrier)});
  const std::string why = "rank 0: rank 1 called broadcast where rank 0 "
                          "called barrier (every rank must call the same "
                          "collectives in the same order)";
  EXPECT_EQ(outcomes[0].output, why);
  EXPECT_EQ(outcomes[1].output, "rank 1: broadcast failed: " + why);
  EXPECT_EQ(outcomes[2].output, "rank 2: barrier failed: " + why);
  for (const RankOutcome &o : outcomes)
    EXPECT_EQ(o.exitCode, 1);
}

TEST(TcpProtocol, SizeDisagreementIsNamedAndBreaksTheCommunicator) {
  int port = freePort();
  auto sum = [](int64_t count) {
    return [count](Communicator &c) -> io::Status {
      std::vector<float> data(static_cast<size_t>(count), 1.0f);
      io::Status s = c.allReduceSum(data.data(), count);
      if (!s)
        return s;
      // Unusable from now on, with the first error.
      io::Status later = c.barrier();
      return io::IoError{s->message + " | " + (later ? later->message : "")};
    };
  };
  auto outcomes =
      runRanks({rank(port, 0, 2, sum(10)), rank(port, 1, 2, sum(12))});
  const std::string why = "rank 0: all-reduce: rank 1 passed 48 bytes where "
                          "rank 0 passed 40 (the ranks disagree on sizes)";
  EXPECT_EQ(outcomes[0].output,
            why +
                " | rank 0: barrier refused: this communicator failed "
                "earlier (" +
                why + ")");
  EXPECT_EQ(outcomes[1].output.substr(0, outcomes[1].output.find(" | ")),
            "rank 1: all-reduce failed: " + why);
}

TEST(TcpProtocol, AllToAllSizesMustMatch) {
  int port = freePort();
  auto exchange = [](int64_t toOther, int64_t fromOther) {
    return [=](Communicator &c) {
      int me = c.rank();
      std::vector<int64_t> send(2, 1), recv(2, 1);
      send[1 - me] = toOther;
      recv[1 - me] = fromOther;
      std::vector<char> in(64), out(64);
      return c.allToAllV(in.data(), send, out.data(), recv);
    };
  };
  auto outcomes = runRanks(
      {rank(port, 0, 2, exchange(4, 4)), rank(port, 1, 2, exchange(4, 8))});
  EXPECT_EQ(outcomes[0].output, "rank 0: all-to-all: rank 0 sends 4 bytes to "
                                "rank 1, which expects 8");
  EXPECT_NE(outcomes[1].output.find("all-to-all failed: rank 0: all-to-all: "
                                    "rank 0 sends 4 bytes to rank 1"),
            std::string::npos);
}

TEST(TcpProtocol, WorldSizeDisagreement) {
  int port = freePort();
  auto none = [](Communicator &) -> io::Status { return std::nullopt; };
  auto outcomes = runRanks({rank(port, 0, 2, none), rank(port, 1, 3, none)});
  const std::string why =
      "rank 0: start-up: the process at 127.0.0.1 connected as rank 1 of 3, "
      "but this job has 2 ranks (every rank must have the same WORLD_SIZE)";
  EXPECT_EQ(outcomes[0].output, why);
  EXPECT_EQ(outcomes[1].output, "rank 1: start-up failed: " + why);
}

TEST(TcpProtocol, DuplicateRank) {
  int port = freePort();
  auto none = [](Communicator &) -> io::Status { return std::nullopt; };
  auto outcomes = runRanks(
      {rank(port, 0, 3, none), rank(port, 1, 3, none), rank(port, 1, 3, none)});
  EXPECT_NE(outcomes[0].output.find("rank 0: start-up: two processes "
                                    "connected as rank 1 (from 127.0.0.1 and "
                                    "127.0.0.1; every RANK must be unique)"),
            std::string::npos)
      << outcomes[0].output;
  for (const RankOutcome &o : outcomes)
    EXPECT_EQ(o.exitCode, 1);
}

TEST(TcpProtocol, NobodyListening) {
  int port = freePort();
  TcpWorldOptions options{1, 2, "127.0.0.1", port, 1.0};
  auto comm = connectTcpWorld(options);
  ASSERT_FALSE(comm.ok());
  EXPECT_EQ(comm.error().message,
            "rank 1: start-up: timed out after 1 s connecting to 127.0.0.1:" +
                std::to_string(port) +
                " (Connection refused; is rank 0 running and "
                "MASTER_ADDR/MASTER_PORT right?)");
}

TEST(TcpProtocol, MissingRankTimesOut) {
  int port = freePort();
  auto outcomes = runRanks({[port](FILE *out) {
    TcpWorldOptions options{0, 3, "127.0.0.1", port, 1.0};
    auto comm = connectTcpWorld(options);
    std::fprintf(out, "%s",
                 comm.ok() ? "connected" : comm.error().message.c_str());
    return 1;
  }});
  EXPECT_EQ(outcomes[0].output,
            "rank 0: start-up timed out after 1 s waiting for ranks 1, 2 (a "
            "rank may have died or be stuck; DSFLOW_COMM_TIMEOUT sets the "
            "limit)");
}

} // namespace
} // namespace dsflow::dist
