// The process's GPU context (device, compute stream, cuBLAS handle, scratch memory) and the CUDA/cuBLAS error text.
#include "core/cuda/cuda_context.h"

#include <cstdint>
#include <cstdlib>
#include <mutex>

#include "core/check.h"

namespace rt {
namespace {

struct CudaContext {
  int device = -1;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
};

std::mutex context_mutex;
int chosen_device = -1;           // set by cuda_device_select or the first cuda_device()
CudaContext* context = nullptr;   // created once, never destroyed: tensors may be freed during static destruction

int launcher_local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID", "LOCAL_RANK"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

int device_for_rank(int node_local_rank) {
  std::string why;
  const int count = cuda_device_count(&why);
  if (count == 0) fatal("the CUDA backend needs a GPU but " + why, __FILE__, __LINE__);
  return node_local_rank % count;
}

CudaContext& context_get() {
  std::lock_guard<std::mutex> lock(context_mutex);
  if (context) return *context;
  if (chosen_device < 0) chosen_device = device_for_rank(launcher_local_rank());
  auto* c = new CudaContext;
  c->device = chosen_device;
  RT_CHECK_CUDA(cudaSetDevice(c->device));
  RT_CHECK_CUDA(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
  RT_CHECK_CUBLAS(cublasCreate(&c->cublas));
  RT_CHECK_CUBLAS(cublasSetStream(c->cublas, c->stream));
  // Freed scratch memory stays in the pool for the next cudaMallocAsync instead of going back to the driver.
  cudaMemPool_t pool;
  RT_CHECK_CUDA(cudaDeviceGetDefaultMemPool(&pool, c->device));
  uint64_t keep = UINT64_MAX;
  RT_CHECK_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
  context = c;
  return *c;
}

}  // namespace

int cuda_device_count(std::string* why) {
  int count = 0;
  const cudaError_t rc = cudaGetDeviceCount(&count);
  if (rc != cudaSuccess || count == 0) {
    if (why)
      *why = "no CUDA device is visible (cudaGetDeviceCount: " +
             std::string(rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices") + ")";
    cudaGetLastError();  // clear the sticky-free error so later calls do not report it
    return 0;
  }
  return count;
}

void cuda_device_select(int node_local_rank) {
  const int device = device_for_rank(node_local_rank);
  std::lock_guard<std::mutex> lock(context_mutex);
  RT_CHECK(chosen_device < 0 || chosen_device == device,
           "GPU " + std::to_string(device) + " chosen after GPU " + std::to_string(chosen_device) + " was in use");
  chosen_device = device;
}

int cuda_device() { return context_get().device; }
cudaStream_t cuda_stream() { return context_get().stream; }
cublasHandle_t cublas_handle() { return context_get().cublas; }

void* cuda_scratch_alloc(size_t bytes, cudaStream_t stream) {
  void* p = nullptr;
  const cudaError_t rc = cudaMallocAsync(&p, bytes ? bytes : 1, stream);
  if (rc == cudaErrorMemoryAllocation)
    fatal("out of GPU memory allocating " + std::to_string(bytes) + " bytes on GPU " + std::to_string(cuda_device()),
          __FILE__, __LINE__);
  RT_CHECK_CUDA(rc);
  return p;
}

void cuda_scratch_free(void* p, cudaStream_t stream) {
  // At process exit the runtime may already be gone; a tensor freed then has nothing left to free.
  const cudaError_t rc = cudaFreeAsync(p, stream);
  if (rc != cudaErrorCudartUnloading) RT_CHECK_CUDA(rc);
}

std::string format_cuda_error(int code) {
  const auto e = static_cast<cudaError_t>(code);
  return std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e);
}

std::string format_cublas_error(int code) {
  const auto s = static_cast<cublasStatus_t>(code);
  return std::string(cublasGetStatusName(s)) + ": " + cublasGetStatusString(s);
}

}  // namespace rt
