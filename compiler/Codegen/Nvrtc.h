//===- Nvrtc.h - CUDA C++ to PTX and machine code at compile time -*- C++
//-*-===//
//
// Compiles a CUDA C++ module with NVRTC, once to PTX for the virtual
// architecture and once to machine code (cubin) for the real one, with no GPU
// present. Built only where CMake found the CUDA toolkit; elsewhere every call
// is an error that says so.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_CODEGEN_NVRTC_H
#define DSFLOW_COMPILER_CODEGEN_NVRTC_H

#include "io/Status.h"

#include <string>

namespace dsflow::codegen {

struct CompiledCuda {
  std::string ptx;
  std::string cubin;
};

/// `arch` is a real architecture ("sm_90a"); the PTX is for "compute_90a".
io::Expected<CompiledCuda> compileCuda(const std::string &source,
                                       const std::string &arch);

/// Whether this build can compile CUDA (NVRTC was found).
bool haveNvrtc();

} // namespace dsflow::codegen

#endif // DSFLOW_COMPILER_CODEGEN_NVRTC_H
