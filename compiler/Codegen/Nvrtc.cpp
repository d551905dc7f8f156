//===- Nvrtc.cpp - CUDA C++ to PTX and machine code at compile time -------===//
#include "Codegen/Nvrtc.h"

#ifdef DSFLOW_HAVE_NVRTC
#include <nvrtc.h>
#endif

#include <vector>

namespace dsflow::codegen {

#ifdef DSFLOW_HAVE_NVRTC
namespace {

/// One NVRTC compilation for `arch` ("compute_90a" or "sm_90a"): the PTX or
/// the cubin, or the compiler's log.
io::Expected<std::string> compileFor(const std::string &source,
                                     const std::string &arch,
                                     bool machineCode) {
  nvrtcProgram program;
  if (nvrtcCreateProgram(&program, source.c_str(), "dsflow_kernels.cu", 0,
                         nullptr, nullptr) != NVRTC_SUCCESS)
    return io::makeError("cuda", "NVRTC could not create a program");
  std::string archFlag = "--gpu-architecture=" + arch;
  std::string include = std::string("-I") + DSFLOW_CUDA_INCLUDE_DIR;
  // CUDA 13 keeps libcu++ (which cooperative_groups.h includes) under cccl/.
  std::string cccl = include + "/cccl";
  const char *options[] = {archFlag.c_str(), include.c_str(), cccl.c_str(),
                           "--std=c++17", "-lineinfo"};
  nvrtcResult result = nvrtcCompileProgram(program, 5, options);
  auto finish = [&](io::Expected<std::string> value) {
    nvrtcDestroyProgram(&program);
    return value;
  };
  if (result != NVRTC_SUCCESS) {
    size_t size = 0;
    nvrtcGetProgramLogSize(program, &size);
    std::string log(size, '\0');
    nvrtcGetProgramLog(program, log.data());
    // The first line of the log names the problem.
    std::string first = log.substr(0, log.find('\n'));
    return finish(io::makeError(
        "cuda",
        "NVRTC (" + arch + "): " + nvrtcGetErrorString(result) + ": " + first));
  }
  size_t size = 0;
  std::string code;
  if (machineCode) {
    nvrtcGetCUBINSize(program, &size);
    code.resize(size);
    nvrtcGetCUBIN(program, code.data());
  } else {
    nvrtcGetPTXSize(program, &size);
    code.resize(size);
    nvrtcGetPTX(program, code.data());
    // The size counts the C string's terminator, which is not PTX.
    while (!code.empty() && code.back() == '\0')
      code.pop_back();
  }
  return finish(code);
}

} // namespace

io::Expected<CompiledCuda> compileCuda(const std::string &source,
                                       const std::string &arch) {
  if (arch.rfind("sm_", 0) != 0)
    return io::makeError("cuda", "architecture '" + arch +
                                     "' is not a real one (sm_XX)");
  io::Expected<std::string> ptx =
      compileFor(source, "compute_" + arch.substr(3), false);
  if (!ptx)
    return ptx.error();
  io::Expected<std::string> cubin = compileFor(source, arch, true);
  if (!cubin)
    return cubin.error();
  return CompiledCuda{*ptx, *cubin};
}

bool haveNvrtc() { return true; }

#else

io::Expected<CompiledCuda> compileCuda(const std::string &,
                                       const std::string &) {
  return io::makeError("cuda", "this dsflow was built without the CUDA "
                               "toolkit (NVRTC): --cuda is unavailable");
}

bool haveNvrtc() { return false; }

#endif

} // namespace dsflow::codegen
