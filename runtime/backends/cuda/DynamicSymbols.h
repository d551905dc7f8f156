//===- DynamicSymbols.h - Functions of a library opened late ----*- C++ -*-===//
//
// The CUDA backend opens the driver (libcuda.so.1) and NCCL (libnccl.so.2)
// with dlopen, so that a dsflow built with CUDA starts where they are not
// installed; their functions are bound by name, typed by their headers.
//
//===----------------------------------------------------------------------===//
#ifndef DSFLOW_RUNTIME_BACKENDS_CUDA_DYNAMICSYMBOLS_H
#define DSFLOW_RUNTIME_BACKENDS_CUDA_DYNAMICSYMBOLS_H

#include <dlfcn.h>

namespace dsflow::cuda {

/// Binds `to` to `symbol` of `library`; false when it has none.
template <typename F>
bool bindSymbol(void *library, const char *symbol, F &to) {
  to = reinterpret_cast<F>(dlsym(library, symbol));
  return to != nullptr;
}

} // namespace dsflow::cuda

#endif // DSFLOW_RUNTIME_BACKENDS_CUDA_DYNAMICSYMBOLS_H
