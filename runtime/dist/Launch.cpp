//===- Launch.cpp - Starting and ending a distributed job -----------------===//
#include "dist/Launch.h"

#include "dist/Deadline.h"
#include "dist/SelfCommunicator.h"
#include "dist/TcpCommunicator.h"
#ifdef DSFLOW_HAVE_MPI
#include "dist/MpiCommunicator.h"
#endif

#include <cstdio>
#include <cstdlib>

namespace dsflow::dist {

bool mpiAvailable() {
#ifdef DSFLOW_HAVE_MPI
  return true;
#else
  return false;
#endif
}

io::Expected<LaunchConfig> detectLaunchFromEnv() {
  return detectLaunch([](const char *name) { return std::getenv(name); },
                      mpiAvailable());
}

io::Expected<std::unique_ptr<Communicator>> initCommunicator(int *argc,
                                                             char ***argv) {
  auto timeout = commTimeoutFromEnv();
  if (!timeout.ok())
    return timeout.error();
  auto config = detectLaunchFromEnv();
  if (!config.ok())
    return config.error();
  switch (config->transport) {
  case Transport::Self:
    return std::unique_ptr<Communicator>(new SelfCommunicator());
  case Transport::Tcp: {
    TcpWorldOptions options;
    options.rank = config->rank;
    options.size = config->worldSize;
    options.masterAddr = config->masterAddr;
    options.masterPort = config->masterPort;
    options.timeoutSeconds = *timeout;
    return connectTcpWorld(options);
  }
  case Transport::Mpi:
#ifdef DSFLOW_HAVE_MPI
    return mpi::initWorld(argc, argv, *timeout);
#else
    break; // detectLaunch refuses MPI in a build without it
#endif
  }
  (void)argc;
  (void)argv;
  return io::makeError("launch", "MPI is not available in this build");
}

io::Status finalizeCommunicator() {
#ifdef DSFLOW_HAVE_MPI
  return mpi::finalize();
#else
  return std::nullopt;
#endif
}

void abortJob(int exitCode) {
  std::fflush(stdout);
  std::fflush(stderr);
#ifdef DSFLOW_HAVE_MPI
  if (mpi::running())
    mpi::abortWorld(exitCode);
#endif
  std::_Exit(exitCode);
}

} // namespace dsflow::dist
