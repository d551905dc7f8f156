//===- MpiCommunicator.h - Collectives over MPI -----------------*- C++ -*-===//
//
// Built only when CMake finds MPI (DSFLOW_HAVE_MPI); Launch.h is the way in.
// mpi.h stays out of this header so nothing else depends on it.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_DIST_MPICOMMUNICATOR_H
#define DSFLOW_DIST_MPICOMMUNICATOR_H

#include "dist/Communicator.h"

namespace dsflow::dist::mpi {

/// MPI_Init_thread (unless MPI is already initialized), MPI_ERRORS_RETURN on
/// MPI_COMM_WORLD, and a communicator over a duplicate of it.
io::Expected<std::unique_ptr<Communicator>> initWorld(int *argc, char ***argv,
                                                      double timeoutSeconds);

/// True between MPI_Init and MPI_Finalize.
bool running();

/// MPI_Finalize, when running. Destroy the communicators first.
io::Status finalize();

/// MPI_Abort(MPI_COMM_WORLD, code): the launcher ends every rank.
[[noreturn]] void abortWorld(int code);

} // namespace dsflow::dist::mpi

#endif // DSFLOW_DIST_MPICOMMUNICATOR_H
