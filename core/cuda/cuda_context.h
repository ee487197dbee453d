// This process's GPU: the device chosen by node-local rank, the compute stream, the cuBLAS handle, launch helpers.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>

namespace rt {

// Visible CUDA devices; 0 with the reason in *why (e.g. "cudaGetDeviceCount: no CUDA-capable device is detected").
int cuda_device_count(std::string* why = nullptr);

// Chooses this process's GPU: node_local_rank modulo the visible devices. Call before anything touches the GPU (the
// NCCL bootstrap does, with the rank from MPI_Comm_split_type); choosing another device later is a fatal error.
void cuda_device_select(int node_local_rank);
// This process's GPU. Without cuda_device_select, the first call picks the launcher's node-local rank
// (OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID, MPI_LOCALRANKID or LOCAL_RANK; else 0) modulo the visible devices,
// makes it current on the calling thread and creates the stream and the cuBLAS handle.
int cuda_device();
// The compute stream: every kernel, copy and cuBLAS call of the CUDA backend and of the CUDA attention kernels runs
// on it, so their order is program order. Created non-blocking; lives until the process ends.
cudaStream_t cuda_stream();
cublasHandle_t cublas_handle();

// Stream-ordered memory (cudaMallocAsync from the device's pool, which keeps freed memory for reuse): usable by work
// queued on `stream` after the call, freed after the work queued before the free. Fatal with the size when the GPU
// is out of memory. The CUDA backend's tensors are allocated this way on the compute stream.
void* cuda_scratch_alloc(size_t bytes, cudaStream_t stream);
void cuda_scratch_free(void* p, cudaStream_t stream);

namespace gpu {

// Blocks of `threads` for n items, capped for grid-stride loops (enough to fill any current GPU).
inline unsigned blocks_for(int64_t n, int threads) {
  return static_cast<unsigned>(std::clamp<int64_t>((n + threads - 1) / threads, 1, 8192));
}

}  // namespace gpu
}  // namespace rt
