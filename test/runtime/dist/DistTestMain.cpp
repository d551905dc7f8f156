//===- DistTestMain.cpp - The multi-process communicator test -------------===//
//
// One binary for every launcher: it starts through initCommunicator, so
//   mpirun --allow-run-as-root --oversubscribe -np 4 dsflow-dist-tests
// tests the MPI communicator and launch_local.py (RANK, WORLD_SIZE, ...) the
// TCP one. Scenarios:
//   --scenario=collectives  (default) every collective against local values
//   --scenario=dead-rank    rank --victim exits abruptly before an all-reduce;
//                           the others must fail with a clear error
//   --scenario=hung-rank    rank --victim stops answering; the others must
//                           time out (DSFLOW_COMM_TIMEOUT) with a clear error
// A surviving rank that sees the expected failure prints it and calls
// abortJob(1), as a dsflow program would, so the job always ends non-zero.
//
//===----------------------------------------------------------------------===//
#include "CollectiveChecks.h"

#include "dist/Deadline.h"
#include "dist/Launch.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

using namespace dsflow;

static int collectives(dist::Communicator &comm) {
  auto started = std::chrono::steady_clock::now();
  dist::test::CheckReport report = dist::test::runCollectiveChecks(comm);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  int me = comm.worldRank(comm.rank());
  for (const std::string &failure : report.failures)
    std::fprintf(stderr, "rank %d: FAIL %s\n", me, failure.c_str());
  std::printf("rank %d: %d checks passed, %zu failed (%s, %d ranks, %.2f s)\n",
              me, report.passed, report.failures.size(), comm.transport(),
              comm.size(), seconds);
  std::fflush(stdout);
  return report.failures.empty() ? 0 : 1;
}

/// The victim leaves; the others' next all-reduce must fail, not hang.
static int peerFailure(dist::Communicator &comm, int victim, bool hang) {
  if (io::Status s = comm.barrier()) {
    std::fprintf(stderr, "%s\n", s->message.c_str());
    dist::abortJob(1);
  }
  int me = comm.rank();
  if (me == victim) {
    std::fflush(stdout);
    if (!hang)
      std::_Exit(7); // no finalize, no goodbye
    // Silent past the others' timeout, then rejoin (and find them gone).
    auto timeout = dist::commTimeoutFromEnv();
    std::this_thread::sleep_for(
        std::chrono::duration<double>((timeout.ok() ? *timeout : 5.0) + 3.0));
    io::Status s = comm.barrier();
    std::fprintf(stderr, "rank %d (hung): %s\n", me,
                 s ? s->message.c_str() : "barrier passed");
    std::fflush(stderr);
    std::_Exit(3);
  }
  std::vector<float> data(1000, 1.0f);
  auto started = std::chrono::steady_clock::now();
  io::Status s = comm.allReduceSum(data.data(), 1000);
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  if (!s) {
    std::fprintf(stderr, "rank %d: UNEXPECTED: the all-reduce passed\n", me);
    dist::abortJob(2);
  }
  std::fprintf(stderr, "%s [after %.1f s]\n", s->message.c_str(), seconds);
  dist::abortJob(1);
}

int main(int argc, char **argv) {
  auto comm = dist::initCommunicator(&argc, &argv);
  if (!comm.ok()) {
    std::fprintf(stderr, "%s\n", comm.error().message.c_str());
    return 1;
  }
  std::string scenario = "collectives";
  int victim = 1;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--scenario=", 0) == 0)
      scenario = arg.substr(11);
    else if (arg.rfind("--victim=", 0) == 0)
      victim = std::atoi(arg.c_str() + 9);
    else {
      std::fprintf(stderr, "dsflow-dist-tests: unknown argument %s\n",
                   arg.c_str());
      dist::abortJob(2);
    }
  }
  int status = 2;
  if (scenario == "collectives")
    status = collectives(**comm);
  else if (scenario == "dead-rank" || scenario == "hung-rank")
    status = peerFailure(**comm, victim, scenario == "hung-rank");
  else
    std::fprintf(stderr, "dsflow-dist-tests: unknown scenario %s\n",
                 scenario.c_str());
  if (status != 0)
    dist::abortJob(status);
  comm->reset();
  if (io::Status s = dist::finalizeCommunicator()) {
    std::fprintf(stderr, "%s\n", s->message.c_str());
    return 1;
  }
  return 0;
}
