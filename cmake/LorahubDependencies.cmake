# Every third-party package is found here, once. scripts/install-deps.sh installs them on Debian 12.
find_package(Threads REQUIRED)
find_package(Torch REQUIRED)             # Debian's libtorch-dev, or an official build via CMAKE_PREFIX_PATH
find_package(nlohmann_json 3 REQUIRED)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 2.1 REQUIRED)
find_package(NLopt REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SENTENCEPIECE REQUIRED IMPORTED_TARGET sentencepiece)
pkg_check_modules(RE2 REQUIRED IMPORTED_TARGET re2)  # linear-time regexes for PEFT's target_modules (lora)

if(LORAHUB_WITH_MPI)
  find_package(MPI REQUIRED COMPONENTS C)
endif()

if(LORAHUB_WITH_NCCL)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${LORAHUB_CUDA_ROOT}/include REQUIRED)
  find_library(NCCL_LIBRARY nccl HINTS ${LORAHUB_CUDA_ROOT}/lib ${LORAHUB_CUDA_ROOT}/lib64 REQUIRED)
  find_path(CUDART_INCLUDE_DIR cuda_runtime_api.h
            HINTS ${LORAHUB_CUDA_ROOT}/include ${LORAHUB_CUDA_ROOT}/targets/x86_64-linux/include REQUIRED)
  find_library(CUDART_LIBRARY cudart
               HINTS ${LORAHUB_CUDA_ROOT}/lib64 ${LORAHUB_CUDA_ROOT}/lib
                     ${LORAHUB_CUDA_ROOT}/targets/x86_64-linux/lib REQUIRED)
  message(STATUS "NCCL: ${NCCL_LIBRARY}")
endif()

if(LORAHUB_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
if(LORAHUB_BUILD_BENCH)
  find_package(benchmark REQUIRED)
endif()
