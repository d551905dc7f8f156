//===- LaunchEnvTest.cpp - Launcher detection and its one-line errors -----===//
#include "dist/LaunchEnv.h"
#include "dist/Deadline.h"

#include <gtest/gtest.h>

#include <map>

namespace dsflow::dist {
namespace {

using Env = std::map<std::string, std::string>;

io::Expected<LaunchConfig> detect(const Env &env, bool mpi = true) {
  return detectLaunch(
      [&](const char *name) -> const char * {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      },
      mpi);
}

std::string errorOf(const Env &env, bool mpi = true) {
  auto config = detect(env, mpi);
  return config.ok() ? "(no error)" : config.error().message;
}

const Env kTorchrun = {{"RANK", "1"},
                       {"WORLD_SIZE", "4"},
                       {"LOCAL_RANK", "1"},
                       {"MASTER_ADDR", "node0"},
                       {"MASTER_PORT", "29500"}};

TEST(LaunchEnv, NothingSetIsOneProcess) {
  auto config = detect({});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->transport, Transport::Self);
  EXPECT_EQ(config->worldSize, 1);
}

TEST(LaunchEnv, MpiLaunchers) {
  auto config = detect(
      {{"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "2"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->transport, Transport::Mpi);
  EXPECT_EQ(config->localRank, 2);
  EXPECT_EQ(detect({{"PMIX_RANK", "0"}})->transport, Transport::Mpi);
  EXPECT_EQ(detect({{"PMI_RANK", "3"}})->transport, Transport::Mpi);
  EXPECT_EQ(detect({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}})->transport,
            Transport::Mpi);
  // One Slurm task (an sbatch script, srun -n1) needs no communication.
  EXPECT_EQ(detect({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}})->transport,
            Transport::Self);
  // mpirun wins over a stray torchrun environment.
  Env both = kTorchrun;
  both["OMPI_COMM_WORLD_SIZE"] = "4";
  EXPECT_EQ(detect(both)->transport, Transport::Mpi);
}

TEST(LaunchEnv, MpiLaunchWithoutMpiBuild) {
  EXPECT_EQ(errorOf({{"OMPI_COMM_WORLD_SIZE", "4"}}, /*mpi=*/false),
            "launch: mpirun (OMPI_COMM_WORLD_SIZE) started this process, but "
            "this dsflow was built without MPI (install libopenmpi-dev and "
            "rebuild, or launch with RANK, WORLD_SIZE, MASTER_ADDR, "
            "MASTER_PORT)");
}

TEST(LaunchEnv, TorchrunEnvironment) {
  auto config = detect(kTorchrun, /*mpi=*/false);
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->transport, Transport::Tcp);
  EXPECT_EQ(config->rank, 1);
  EXPECT_EQ(config->worldSize, 4);
  EXPECT_EQ(config->localRank, 1);
  EXPECT_EQ(config->masterAddr, "node0");
  EXPECT_EQ(config->masterPort, 29500);
  // A world of one talks to nobody: no address needed.
  config = detect({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->transport, Transport::Self);
}

TEST(LaunchEnv, TorchrunErrors) {
  auto with = [](const char *name, const char *value) {
    Env env = kTorchrun;
    if (value)
      env[name] = value;
    else
      env.erase(name);
    return errorOf(env);
  };
  EXPECT_EQ(with("RANK", "4"), "RANK: 4 is not below WORLD_SIZE 4");
  EXPECT_EQ(with("RANK", "abc"), "RANK: 'abc' is not an integer");
  EXPECT_EQ(with("RANK", "1x"), "RANK: '1x' is not an integer");
  EXPECT_EQ(with("RANK", "-1"), "RANK: -1 is out of range (0..1048576)");
  EXPECT_EQ(with("WORLD_SIZE", "0"),
            "WORLD_SIZE: 0 is out of range (1..1048576)");
  EXPECT_EQ(with("WORLD_SIZE", nullptr), "WORLD_SIZE: not set, but RANK is");
  EXPECT_EQ(with("RANK", nullptr), "RANK: not set, but WORLD_SIZE is");
  EXPECT_EQ(with("LOCAL_RANK", "x"), "LOCAL_RANK: 'x' is not an integer");
  EXPECT_EQ(with("MASTER_PORT", nullptr),
            "MASTER_PORT: not set (WORLD_SIZE is 4: the ranks meet at rank "
            "0's MASTER_ADDR:MASTER_PORT)");
  EXPECT_EQ(with("MASTER_ADDR", nullptr),
            "MASTER_ADDR: not set (WORLD_SIZE is 4: the ranks meet at rank "
            "0's MASTER_ADDR:MASTER_PORT)");
  EXPECT_EQ(with("MASTER_PORT", "70000"),
            "MASTER_PORT: 70000 is out of range (1..65535)");
  EXPECT_EQ(with("MASTER_PORT", " 1"), "MASTER_PORT: ' 1' is not an integer");
}

TEST(LaunchEnv, ForcedTransport) {
  Env env = kTorchrun;
  env["DSFLOW_COMM"] = "self";
  EXPECT_EQ(detect(env)->transport, Transport::Self);
  env = {{"DSFLOW_COMM", "tcp"}};
  EXPECT_EQ(errorOf(env), "WORLD_SIZE: not set");
  env = {{"DSFLOW_COMM", "mpi"}};
  EXPECT_EQ(detect(env)->transport, Transport::Mpi);
  env = {{"DSFLOW_COMM", "nccl"}};
  EXPECT_EQ(errorOf(env),
            "DSFLOW_COMM: 'nccl' is not one of auto, self, mpi, tcp");
}

TEST(CommTimeout, ParsesSeconds) {
  EXPECT_EQ(*parseCommTimeout("5"), 5.0);
  EXPECT_EQ(*parseCommTimeout("2.5"), 2.5);
  for (const char *bad : {"", "0", "-3", "5s", "abc", "inf", "nan"}) {
    auto parsed = parseCommTimeout(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.error().message,
              std::string("DSFLOW_COMM_TIMEOUT: '") + bad +
                  "' is not a number of seconds (a positive number, e.g. "
                  "300)");
  }
}

TEST(CommTimeout, MessagesNameTheRanks) {
  EXPECT_EQ(timedOutText("all-to-all", 300, ranksText({2})),
            "all-to-all timed out after 300 s waiting for rank 2 (a rank may "
            "have died or be stuck; DSFLOW_COMM_TIMEOUT sets the limit)");
  EXPECT_EQ(ranksText({1, 3}), "ranks 1, 3");
  EXPECT_EQ(ranksText({}), "peers");
}

} // namespace
} // namespace dsflow::dist
