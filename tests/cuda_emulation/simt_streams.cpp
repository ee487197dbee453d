// The emulated GPU's in-flight work per stream, and the waits on it (see simt_streams.h).
#include "tests/cuda_emulation/simt.h"  // first: it defines the CUDA keywords

#include "tests/cuda_emulation/simt_streams.h"

#include <chrono>
#include <map>
#include <mutex>
#include <thread>

namespace simt {
namespace {

constexpr int kHangSeconds = 60;

std::mutex streams_mutex;
std::map<cudaStream_t, InFlightList> in_flight;

}  // namespace

void stream_add(cudaStream_t stream, std::shared_ptr<InFlight> work) {
  std::lock_guard<std::mutex> lock(streams_mutex);
  in_flight[stream].push_back(std::move(work));
}

InFlightList stream_in_flight(cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(streams_mutex);
  InFlightList& list = in_flight[stream];
  std::erase_if(list, [](const std::shared_ptr<InFlight>& w) { return w->test(); });
  return list;
}

bool all_complete(const InFlightList& work) {
  for (const auto& w : work)
    if (!w->test()) return false;
  return true;
}

void wait_complete(const InFlightList& work) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kHangSeconds);
  for (const auto& w : work)
    while (!w->test()) {
      if (std::chrono::steady_clock::now() > deadline)
        fail(("emulated NCCL: " + w->what + " has not completed in " + std::to_string(kHangSeconds) +
              " s: the ranks' sends and receives do not pair up")
                 .c_str());
      std::this_thread::sleep_for(std::chrono::microseconds(50));  // leave the core to the peer's kernels
    }
}

void stream_depend(cudaStream_t stream, const InFlightList& work) {
  std::lock_guard<std::mutex> lock(streams_mutex);
  InFlightList& list = in_flight[stream];
  list.insert(list.end(), work.begin(), work.end());
}

void stream_ready(cudaStream_t stream) { wait_complete(stream_in_flight(stream)); }

}  // namespace simt
