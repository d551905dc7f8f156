//===- LaunchEnv.h - How was this process launched? -------------*- C++ -*-===//
//
// Reads the launcher's environment (a lookup function, so tests can pass
// their own) and decides the transport, in this order:
//   DSFLOW_COMM=self|mpi|tcp      forces one (auto, the default, detects)
//   OMPI_COMM_WORLD_SIZE          Open MPI's mpirun                  -> mpi
//   PMIX_RANK, PMI_RANK           srun --mpi=pmix/pmi2, hydra        -> mpi
//   RANK, WORLD_SIZE (+ MASTER_ADDR, MASTER_PORT, LOCAL_RANK)
//                                 torchrun-style                     -> tcp
//   SLURM_PROCID with SLURM_NTASKS > 1   srun                        -> mpi
//   nothing                                                          -> self
// Bad values are one-line errors naming the variable.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_LAUNCHENV_H
#define DSFLOW_DIST_LAUNCHENV_H

#include "io/Status.h"

#include <functional>
#include <string>

namespace dsflow::dist {

enum class Transport { Self, Mpi, Tcp };

struct LaunchConfig {
  Transport transport = Transport::Self;
  /// What decided it, for messages: "mpirun (OMPI_COMM_WORLD_SIZE)", ...
  std::string launcher = "a single process";
  /// From the environment where it says (MPI's own values win once running).
  int rank = 0;
  int worldSize = 1;
  /// This rank's index on its node (LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_RANK,
  /// SLURM_LOCALID), e.g. to pick a GPU; 0 when unknown.
  int localRank = 0;
  std::string masterAddr; // tcp only
  int masterPort = 0;     // tcp only
};

/// Returns the value of an environment variable, or null when unset.
using EnvLookup = std::function<const char *(const char *)>;

/// Decides the transport from `env`; `mpiBuilt` says whether this build has
/// the MPI communicator.
io::Expected<LaunchConfig> detectLaunch(const EnvLookup &env, bool mpiBuilt);

} // namespace dsflow::dist

#endif // DSFLOW_DIST_LAUNCHENV_H
