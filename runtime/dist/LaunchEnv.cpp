//===- LaunchEnv.cpp - How was this process launched? ---------------------===//
#include "dist/LaunchEnv.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>

namespace dsflow::dist {

static bool isSet(const EnvLookup &env, const char *name) {
  const char *value = env(name);
  return value && *value;
}

/// The integer in variable `name`, in [low, high].
static io::Expected<int> parseInt(const EnvLookup &env, const char *name,
                                  long low, long high) {
  std::string text = env(name) ? env(name) : "";
  char *end = nullptr;
  errno = 0;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 ||
      !(std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-'))
    return io::makeError(name, "'" + text + "' is not an integer");
  if (value < low || value > high)
    return io::makeError(name, std::to_string(value) + " is out of range (" +
                                   std::to_string(low) + ".." +
                                   std::to_string(high) + ")");
  return static_cast<int>(value);
}

/// The first set of `names`, parsed as a local rank (0 if none is set).
static io::Expected<int>
localRankFrom(const EnvLookup &env, std::initializer_list<const char *> names) {
  for (const char *name : names)
    if (isSet(env, name))
      return parseInt(env, name, 0, 1 << 20);
  return 0;
}

static io::Expected<LaunchConfig> mpiLaunch(const EnvLookup &env, bool mpiBuilt,
                                            const std::string &launcher) {
  if (!mpiBuilt)
    return io::makeError(
        "launch",
        launcher + " started this process, but this dsflow was built "
                   "without MPI (install libopenmpi-dev and rebuild, or "
                   "launch with RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT)");
  LaunchConfig config;
  config.transport = Transport::Mpi;
  config.launcher = launcher;
  auto local = localRankFrom(
      env, {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"});
  if (!local.ok())
    return local.error();
  config.localRank = *local;
  return config;
}

static io::Expected<LaunchConfig> tcpLaunch(const EnvLookup &env) {
  const int kMaxRanks = 1 << 20;
  LaunchConfig config;
  config.launcher = "torchrun-style environment (RANK, WORLD_SIZE)";
  if (!isSet(env, "WORLD_SIZE"))
    return io::makeError(
        "WORLD_SIZE", isSet(env, "RANK") ? "not set, but RANK is" : "not set");
  if (!isSet(env, "RANK"))
    return io::makeError("RANK", "not set, but WORLD_SIZE is");
  auto size = parseInt(env, "WORLD_SIZE", 1, kMaxRanks);
  if (!size.ok())
    return size.error();
  auto rank = parseInt(env, "RANK", 0, kMaxRanks);
  if (!rank.ok())
    return rank.error();
  if (*rank >= *size)
    return io::makeError("RANK", std::to_string(*rank) +
                                     " is not below WORLD_SIZE " +
                                     std::to_string(*size));
  auto local = localRankFrom(env, {"LOCAL_RANK"});
  if (!local.ok())
    return local.error();
  config.rank = *rank;
  config.worldSize = *size;
  config.localRank = *local;
  if (*size == 1)
    return config; // nobody to talk to: the self communicator
  config.transport = Transport::Tcp;
  std::string why = " (WORLD_SIZE is " + std::to_string(*size) +
                    ": the ranks meet at rank 0's MASTER_ADDR:MASTER_PORT)";
  if (!isSet(env, "MASTER_ADDR"))
    return io::makeError("MASTER_ADDR", "not set" + why);
  if (!isSet(env, "MASTER_PORT"))
    return io::makeError("MASTER_PORT", "not set" + why);
  auto port = parseInt(env, "MASTER_PORT", 1, 65535);
  if (!port.ok())
    return port.error();
  config.masterAddr = env("MASTER_ADDR");
  config.masterPort = *port;
  return config;
}

io::Expected<LaunchConfig> detectLaunch(const EnvLookup &env, bool mpiBuilt) {
  std::string forced = isSet(env, "DSFLOW_COMM") ? env("DSFLOW_COMM") : "auto";
  if (forced == "self")
    return LaunchConfig{};
  if (forced == "mpi")
    return mpiLaunch(env, mpiBuilt, "DSFLOW_COMM=mpi");
  if (forced == "tcp")
    return tcpLaunch(env);
  if (forced != "auto")
    return io::makeError("DSFLOW_COMM", "'" + forced +
                                            "' is not one of auto, self, "
                                            "mpi, tcp");

  if (isSet(env, "OMPI_COMM_WORLD_SIZE"))
    return mpiLaunch(env, mpiBuilt, "mpirun (OMPI_COMM_WORLD_SIZE)");
  for (const char *name : {"PMIX_RANK", "PMI_RANK"})
    if (isSet(env, name))
      return mpiLaunch(env, mpiBuilt,
                       std::string("a PMI launcher such as srun (") + name +
                           ")");
  if (isSet(env, "RANK") || isSet(env, "WORLD_SIZE"))
    return tcpLaunch(env);
  if (isSet(env, "SLURM_PROCID")) {
    const char *tasksName =
        isSet(env, "SLURM_NTASKS") ? "SLURM_NTASKS" : "SLURM_NPROCS";
    if (isSet(env, tasksName)) {
      auto tasks = parseInt(env, tasksName, 1, 1 << 20);
      if (!tasks.ok())
        return tasks.error();
      if (*tasks > 1)
        return mpiLaunch(env, mpiBuilt, "srun (SLURM_PROCID)");
    }
  }
  return LaunchConfig{};
}

} // namespace dsflow::dist
