//===- CudaSupport.h - Functions the CUDA runtime launches ------*- C++ -*-===//
//
// Every --cuda module also holds the runtime's support functions: the
// elementwise steps inside the ops the runtime composes from cuBLASLt GEMMs
// (the SwiGLU FFNs: SwiGLU, its gradient, row dots); the optimizer where the
// device keeps the training state (AdamW, the gradient norm); and
// DeepSeek-V3's FP8 recipe as the CPU backend emulates it (each GEMM operand
// quantized to E4M3 and back per 1x128 tile, 128x1 tile or 128x128 block;
// combine's rows rounded to BF16) and as the FP8 tensor cores take it (E4M3
// codes, transposed where K runs along the rows, and scales in cuBLASLt's
// order). Unlike the plan kernels' functions they
// take their sizes (and scalars) as arguments after the pointers. Each
// computes what its CPU counterpart does; the quantization bit for bit (E4M3
// conversion, scales and dequantization as runtime/backends/cpu/Fp8.cpp).
// runtime/backends/cuda (DeviceKit) launches them by name.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_COMPILER_CODEGEN_CUDASUPPORT_H
#define DSFLOW_COMPILER_CODEGEN_CUDASUPPORT_H

#include <string>
#include <vector>

namespace dsflow::codegen {

/// The support functions' CUDA C++ source.
const char *cudaSupportSource();
/// Their names, as Plan.cuda.support_functions records them.
const std::vector<std::string> &cudaSupportFunctionNames();

} // namespace dsflow::codegen

#endif // DSFLOW_COMPILER_CODEGEN_CUDASUPPORT_H
