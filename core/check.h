// One check macro family and one fatal handler: internal failures abort every rank; user mistakes exit 2.
#pragma once
#include <stdexcept>
#include <string>

namespace rt {

// A mistake in what the user gave us (config, data file, checkpoint, rank count): one clear sentence
// naming what is wrong and what is valid. Thrown by parsers, caught by the program's main, exit code 2.
struct UserError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Prints "ringtrain: fatal: <what> (<file>:<line>, rank R on HOST)" once and aborts all ranks.
[[noreturn]] void fatal(const std::string& what, const char* file, int line);

// Ends the whole job with `code` (MPI_Abort; this process exits by itself a few seconds later if the launcher cannot be
// reached), for fatal handlers that printed their own message.
[[noreturn]] void abort_all_ranks(int code);

// Prints "ringtrain: error: <message>" (rank 0, or the failing rank) and ends the whole job with exit 2.
[[noreturn]] void exit_user_error(const std::string& message);

std::string format_mpi_error(int code);
// Names and descriptions of CUDA runtime, cuBLAS and NCCL status codes (defined where those libraries are built:
// core/cuda/cuda_context.cpp, parallel/nccl_communicator.cpp), for the RT_CHECK_CUDA family below.
std::string format_cuda_error(int code);
std::string format_cublas_error(int code);
std::string format_nccl_error(int code);

}  // namespace rt

// Internal invariant: a failure here is a bug in ringtrain, not in the user's input.
#define RT_CHECK(cond, msg)                                                          \
  do {                                                                               \
    if (!(cond)) ::rt::fatal(std::string("check failed: " #cond ": ") + (msg), __FILE__, __LINE__); \
  } while (0)

#define RT_CHECK_MPI(expr)                                                                    \
  do {                                                                                        \
    int rt_mpi_rc_ = (expr);                                                                  \
    if (rt_mpi_rc_ != 0) ::rt::fatal(std::string(#expr " failed: ") + ::rt::format_mpi_error(rt_mpi_rc_), __FILE__, __LINE__); \
  } while (0)

// The GPU libraries' calls: every status but 0 (cudaSuccess, CUBLAS_STATUS_SUCCESS, ncclSuccess) is fatal.
#define RT_CHECK_GPU_LIB_(expr, format)                                                                  \
  do {                                                                                                   \
    const int rt_gpu_rc_ = static_cast<int>(expr);                                                       \
    if (rt_gpu_rc_ != 0) ::rt::fatal(std::string(#expr " failed: ") + format(rt_gpu_rc_), __FILE__, __LINE__); \
  } while (0)
#define RT_CHECK_CUDA(expr) RT_CHECK_GPU_LIB_(expr, ::rt::format_cuda_error)
#define RT_CHECK_CUBLAS(expr) RT_CHECK_GPU_LIB_(expr, ::rt::format_cublas_error)
#define RT_CHECK_NCCL(expr) RT_CHECK_GPU_LIB_(expr, ::rt::format_nccl_error)

// A user mistake: throw rt::UserError with the message.
#define RT_USER_CHECK(cond, msg)                  \
  do {                                            \
    if (!(cond)) throw ::rt::UserError(msg);      \
  } while (0)
