//===- dsflow-run.cpp - Executes a training plan on the CPU (or CUDA) backend ===//
//
// The plan format lands with training (issue 3). Until then this tool accepts
// --help and --version and refuses every plan with a clear message, so scripts that
// call it fail loudly instead of silently doing nothing.
//
//===----------------------------------------------------------------------===//
#include <cstdio>
#include <cstring>

int main(int argc, char **argv) {
  const char *usage = "usage: dsflow-run STEP.plan --data FILE --steps N\n";
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::fputs(usage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "--version")) {
    std::puts("dsflow-run 0.1 (no plan format yet)");
    return 0;
  }
  std::fprintf(stderr,
               "dsflow-run: error: %s: plans are not supported yet: this build "
               "has no plan format (it comes with CPU training)\n",
               argv[1]);
  return 2;
}
