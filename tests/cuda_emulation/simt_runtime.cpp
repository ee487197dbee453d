// The CUDA runtime and cuBLAS entry points the project calls, on the SIMT emulator: emulated GPUs whose memory is
// host memory, streams that run each operation when it is queued once what is in flight there (simt_streams.h) is done,
// and cublasGemmEx computed from its definition (column-major, TF32 inputs rounded as the tensor cores round them).
// Arguments are checked as the libraries check them, and device ranges against live allocations. Several threads may
// call it (a watchdog polls events).
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "tests/cuda_emulation/simt_limits.h"
#include "tests/cuda_emulation/simt_streams.h"

namespace {

std::mutex allocations_mutex;
std::map<uintptr_t, size_t> allocations;  // live device allocations: start -> bytes

// fp32 -> TF32 (10-bit mantissa), round to nearest even; inf and NaN pass through.
float to_tf32(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7F800000u) != 0x7F800000u) bits = (bits + 0xFFFu + ((bits >> 13) & 1u)) & 0xFFFFE000u;
  float y;
  std::memcpy(&y, &bits, sizeof y);
  return y;
}

}  // namespace

namespace simt {

void check_device_range(const void* p, size_t bytes, const char* what) {
  if (bytes == 0) return;
  const auto a = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(allocations_mutex);
  auto it = allocations.upper_bound(a);
  if (it == allocations.begin() || a + bytes > std::prev(it)->first + std::prev(it)->second)
    fail((std::string(what) + ": " + std::to_string(bytes) + " bytes are not inside one device allocation").c_str());
}

}  // namespace simt

using simt::check_device_range;

// Eight devices, so that several MPI ranks on one node each get their own (they all share the host's memory).
constexpr int kDevices = 8;
cudaError_t cudaGetDeviceCount(int* count) {
  *count = kDevices;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int device) {
  return device >= 0 && device < kDevices ? cudaSuccess : cudaErrorInvalidDevice;
}
cudaError_t cudaGetLastError(void) { return cudaSuccess; }
const char* cudaGetErrorName(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "cudaSuccess";
    case cudaErrorInvalidValue:
      return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
      return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidDevice:
      return "cudaErrorInvalidDevice";
    default:
      return "cudaError";
  }
}
const char* cudaGetErrorString(cudaError_t error) {
  return error == cudaSuccess ? "no error" : "error reported by the SIMT emulator's runtime";
}

// Streams are distinct handles; events hold what was in flight on their stream when recorded (simt_streams.h).
struct CUevent_st {
  simt::InFlightList waits;
};

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) {
  *stream = reinterpret_cast<cudaStream_t>(new char);  // a distinct handle; streams live as long as the process
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  simt::stream_ready(stream);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) {
  *event = new CUevent_st;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  event->waits = simt::stream_in_flight(stream);
  return cudaSuccess;
}
cudaError_t cudaEventQuery(cudaEvent_t event) {
  return simt::all_complete(event->waits) ? cudaSuccess : cudaErrorNotReady;
}
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int) {
  simt::stream_depend(stream, event->waits);
  return cudaSuccess;
}

cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
  *pool = nullptr;
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, enum cudaMemPoolAttr, void*) { return cudaSuccess; }

cudaError_t cudaFuncSetAttribute(const void*, enum cudaFuncAttribute attr, int value) {
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) simt::raise_dynamic_shared_limit(static_cast<size_t>(value));
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t) {
  if (bytes == 0) return cudaErrorInvalidValue;
  // Exactly `bytes` (256-byte aligned, as cudaMalloc's): under AddressSanitizer a kernel's access one past the end
  // is reported.
  if (posix_memalign(p, 256, bytes) != 0) return cudaErrorMemoryAllocation;
  std::memset(*p, 0xFF, bytes);  // fresh device memory is not zero: reading it before writing shows as NaN
  std::lock_guard<std::mutex> lock(allocations_mutex);
  allocations[reinterpret_cast<uintptr_t>(*p)] = bytes;
  return cudaSuccess;
}

cudaError_t cudaFreeAsync(void* p, cudaStream_t stream) {
  simt::stream_ready(stream);  // work in flight there may still write into p
  {
    std::lock_guard<std::mutex> lock(allocations_mutex);
    if (allocations.erase(reinterpret_cast<uintptr_t>(p)) != 1) return cudaErrorInvalidValue;
  }
  std::free(p);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t stream) {
  simt::stream_ready(stream);
  if (kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice)
    check_device_range(src, bytes, "memcpy source");
  if (kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice)
    check_device_range(dst, bytes, "memcpy destination");
  if (kind == cudaMemcpyDefault || kind == cudaMemcpyHostToHost)
    return cudaErrorInvalidValue;  // the project names kinds
  std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  simt::stream_ready(stream);
  check_device_range(p, bytes, "memset");
  std::memset(p, value, bytes);
  return cudaSuccess;
}

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  static char handle_tag;
  *handle = reinterpret_cast<cublasHandle_t>(&handle_tag);
  return CUBLAS_STATUS_SUCCESS;
}
cudaStream_t cublas_stream = nullptr;  // cublasSetStream's (one handle per process)
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t stream) {
  cublas_stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusName(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_SUCCESS:
      return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE:
      return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED:
      return "CUBLAS_STATUS_NOT_SUPPORTED";
    default:
      return "CUBLAS_STATUS";
  }
}
const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "success" : "error reported by the SIMT emulator's cuBLAS";
}

// C (m,n) = alpha op(A) op(B) + beta C, column-major; fp32 C; A and B fp32 (fp32 or TF32 compute) or both bf16 (fp32
// compute: the products of bf16 values are exact in fp32). beta = 0 does not read C.
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                            const void* alpha, const void* A, cudaDataType Atype, int lda, const void* B,
                            cudaDataType Btype, int ldb, const void* beta, void* C, cudaDataType Ctype, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t) {
  const bool bf16 = Atype == CUDA_R_16BF && Btype == CUDA_R_16BF;
  if (!(bf16 || (Atype == CUDA_R_32F && Btype == CUDA_R_32F)) || Ctype != CUDA_R_32F ||
      (compute != CUBLAS_COMPUTE_32F && (bf16 || compute != CUBLAS_COMPUTE_32F_FAST_TF32)))
    return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N;
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, ta ? k : m) || ldb < std::max(1, tb ? n : k) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  simt::stream_ready(cublas_stream);
  const size_t in_size = bf16 ? sizeof(__nv_bfloat16) : sizeof(float);
  auto* c = static_cast<float*>(C);
  check_device_range(A, in_size * (static_cast<size_t>(lda) * ((ta ? m : k) - 1) + (ta ? k : m)), "gemm A");
  check_device_range(B, in_size * (static_cast<size_t>(ldb) * ((tb ? k : n) - 1) + (tb ? n : k)), "gemm B");
  auto element = [bf16](const void* p, int64_t i) {
    return bf16 ? __bfloat162float(static_cast<const __nv_bfloat16*>(p)[i]) : static_cast<const float*>(p)[i];
  };
  check_device_range(c, sizeof(float) * (static_cast<size_t>(ldc) * (n - 1) + m), "gemm C");
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  // op(A) as (m,k) and op(B)^T as (n,k), row-major and rounded once, so that every dot product reads two rows.
  const bool tf32 = compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  std::vector<float> ar(static_cast<size_t>(m) * k), br(static_cast<size_t>(n) * k);
  for (int i = 0; i < m; ++i)
    for (int p = 0; p < k; ++p) {
      const float x = ta ? element(A, i * static_cast<int64_t>(lda) + p) : element(A, p * static_cast<int64_t>(lda) + i);
      ar[static_cast<size_t>(i) * k + p] = tf32 ? to_tf32(x) : x;
    }
  for (int j = 0; j < n; ++j)
    for (int p = 0; p < k; ++p) {
      const float y = tb ? element(B, p * static_cast<int64_t>(ldb) + j) : element(B, j * static_cast<int64_t>(ldb) + p);
      br[static_cast<size_t>(j) * k + p] = tf32 ? to_tf32(y) : y;
    }
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      // fp32 products and sums, in 8 interleaved partial sums (the tensor cores' order is unspecified too)
      const float* x = &ar[static_cast<size_t>(i) * k];
      const float* y = &br[static_cast<size_t>(j) * k];
      float part[8] = {};
      int p = 0;
      for (; p + 8 <= k; p += 8)
        for (int l = 0; l < 8; ++l) part[l] += x[p + l] * y[p + l];
      for (; p < k; ++p) part[p % 8] += x[p] * y[p];
      const float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
      float& out = c[j * static_cast<int64_t>(ldc) + i];
      out = be == 0.f ? al * sum : al * sum + be * out;
    }
  return CUBLAS_STATUS_SUCCESS;
}
