//===- Launch.h - Starting and ending a distributed job ---------*- C++ -*-===//
//
// Every dsflow program starts the same way, however it was launched:
//
//   auto comm = dist::initCommunicator(&argc, &argv);
//   if (!comm.ok()) { print comm.error().message; return 1; }
//   ...
//   if (io::Status s = (*comm)->allReduceSum(grads, n)) {
//     print s->message; dist::abortJob(1);   // never leave peers waiting
//   }
//   comm->reset(); dist::finalizeCommunicator();
//
// See LaunchEnv.h for how the launcher is detected and docs/distributed.md.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_LAUNCH_H
#define DSFLOW_DIST_LAUNCH_H

#include "dist/Communicator.h"
#include "dist/LaunchEnv.h"

namespace dsflow::dist {

/// True if this build has the MPI communicator (CMake found MPI).
bool mpiAvailable();

/// The launch detected from this process's environment (LaunchEnv.h).
io::Expected<LaunchConfig> detectLaunchFromEnv();

/// Detects the launcher and returns the world communicator: MPI (after
/// MPI_Init), TCP (after every rank has connected) or self. Also validates
/// DSFLOW_COMM_TIMEOUT, the timeout of every collective.
io::Expected<std::unique_ptr<Communicator>> initCommunicator(int *argc,
                                                             char ***argv);

/// Ends MPI cleanly (MPI_Finalize) when it was started; nothing otherwise.
/// Destroy the communicators first. Only for a successful exit: after an
/// error use abortJob().
io::Status finalizeCommunicator();

/// Ends the whole job now: MPI_Abort under MPI (the launcher kills every
/// rank), otherwise this process's exit, which the other ranks see as a
/// closed connection. Flushes stdout and stderr first.
[[noreturn]] void abortJob(int exitCode = 1);

} // namespace dsflow::dist

#endif // DSFLOW_DIST_LAUNCH_H
