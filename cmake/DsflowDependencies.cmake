# Finds the Debian 12 packages dsflow builds with (scripts/setup.sh installs them).
set(DSFLOW_LLVM_PREFIX /usr/lib/llvm-22 CACHE PATH "LLVM/MLIR 22 install prefix")
if(NOT MLIR_DIR)
  set(MLIR_DIR ${DSFLOW_LLVM_PREFIX}/lib/cmake/mlir)
endif()
find_package(MLIR 22.1 REQUIRED CONFIG)
find_package(LLVM 22.1 REQUIRED CONFIG HINTS ${MLIR_DIR}/../llvm)
list(APPEND CMAKE_MODULE_PATH ${MLIR_CMAKE_DIR} ${LLVM_CMAKE_DIR})
message(STATUS "dsflow: MLIR ${LLVM_PACKAGE_VERSION} from ${MLIR_DIR}")

find_package(Protobuf REQUIRED)
find_package(GTest REQUIRED)
find_package(Threads REQUIRED)

# The CUDA toolkit is optional: the build works without it (CPU only).
set(DSFLOW_CUDA_ROOT /usr/local/cuda CACHE PATH "CUDA toolkit root, used when present")
if(EXISTS ${DSFLOW_CUDA_ROOT}/include/cuda.h)
  set(DSFLOW_HAVE_CUDA_TOOLKIT ON)
  message(STATUS "dsflow: CUDA toolkit at ${DSFLOW_CUDA_ROOT}")
else()
  set(DSFLOW_HAVE_CUDA_TOOLKIT OFF)
  message(STATUS "dsflow: no CUDA toolkit, building the CPU backend only")
endif()

if(NOT LLVM_EXTERNAL_LIT)
  set(LLVM_EXTERNAL_LIT ${DSFLOW_LLVM_PREFIX}/bin/lit)
endif()
