# Decides whether this build has the GPU path (RT_CUDA) and NCCL (RT_NCCL), from RINGTRAIN_CUDA = AUTO | ON | OFF.
#   RT_CUDA: nvcc, the CUDA runtime and cuBLAS were found; core/cuda, attention/cuda are compiled.
#   RT_NCCL: RT_CUDA and NCCL's header and library were found; parallel/nccl_communicator.cpp is compiled
#            (else parallel/no_nccl.cpp).
# Architectures: CMAKE_CUDA_ARCHITECTURES, default 80;90 (Ampere A100, Hopper H100): two real architectures
# keep the CI build short; add more with -DCMAKE_CUDA_ARCHITECTURES="80;86;89;90".
set(RT_CUDA OFF)
set(RT_NCCL OFF)
string(TOUPPER "${RINGTRAIN_CUDA}" rt_cuda_mode)
if(NOT rt_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "RINGTRAIN_CUDA is '${RINGTRAIN_CUDA}'; valid: AUTO, ON, OFF")
endif()

if(NOT rt_cuda_mode STREQUAL "OFF")
  # The toolkit's usual place, when nvcc is not on PATH and no compiler was named.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES 80 90 CACHE STRING "CUDA architectures (default: Ampere and Hopper)")
    endif()
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no C++20 flag for nvcc; kernels and the headers they include are C++17
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    set(CMAKE_CUDA_FLAGS_RELEASE "-O3 -DNDEBUG")
    find_package(CUDAToolkit REQUIRED)
    set(RT_CUDA ON)
  elseif(rt_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "RINGTRAIN_CUDA=ON but no CUDA compiler was found: install the CUDA toolkit, put nvcc on "
                        "PATH or pass -DCMAKE_CUDA_COMPILER=/path/to/nvcc (or configure with -DRINGTRAIN_CUDA=OFF)")
  endif()
endif()

if(RT_CUDA)
  find_path(NCCL_INCLUDE_DIR NAMES nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} ${CUDAToolkit_LIBRARY_ROOT}/include)
  find_library(NCCL_LIBRARY NAMES nccl HINTS ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib
                                              ${CUDAToolkit_LIBRARY_ROOT}/lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(RT_NCCL ON)
  endif()
  message(STATUS "ringtrain: GPU path ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures "
                 "${CMAKE_CUDA_ARCHITECTURES}, NCCL ${RT_NCCL})")
else()
  message(STATUS "ringtrain: GPU path OFF (RINGTRAIN_CUDA=${RINGTRAIN_CUDA}); CPU-only build")
endif()
