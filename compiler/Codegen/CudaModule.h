//===- CudaModule.h - The plan's CUDA module ---------------------*- C++
//-*-===//
//
// dsflow-compile --cuda: generates the CUDA function of every plan kernel that
// has one (CudaKernels.h), shares one function among kernels with the same
// body, compiles the module to PTX and sm_90a machine code (Nvrtc.h) and
// records it in the plan with one launch per kernel (Kernel.cuda_launch).
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_CODEGEN_CUDAMODULE_H
#define DSFLOW_COMPILER_CODEGEN_CUDAMODULE_H

#include "io/Status.h"
#include "schemas/plan.pb.h"

#include <string>

namespace dsflow::codegen {

/// Fills plan.cuda and the kernels' cuda_launch; the plan is unchanged on
/// error.
io::Status buildCudaModule(Plan &plan, const std::string &arch = "sm_90a");

} // namespace dsflow::codegen

#endif // DSFLOW_COMPILER_CODEGEN_CUDAMODULE_H
