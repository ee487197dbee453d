// Work still in flight on the emulated GPU's streams. Emulated NCCL groups stay in flight until something needs them
// done: the next operation on their stream (kernel, copy, GEMM, free, collective), a synchronisation, or an event
// wait, which makes the waiting stream depend on them. Kernels, copies and GEMMs then run when queued (the host runs
// them in the stream's place). So a missing event wait shows, and a hung exchange is seen by cudaEventQuery, and so
// by the NCCL watchdog, as on a GPU.
#pragma once
#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace simt {

struct InFlight {
  std::string what;            // for the hang message
  std::function<bool()> test;  // true once complete (may be called from any thread)
};
using InFlightList = std::vector<std::shared_ptr<InFlight>>;

// Queues `work` on `stream`, after everything already in flight there.
void stream_add(cudaStream_t stream, std::shared_ptr<InFlight> work);
// What is in flight on `stream` now (completed work dropped).
InFlightList stream_in_flight(cudaStream_t stream);
// True when every item has completed.
bool all_complete(const InFlightList& work);
// Blocks until every item has completed; fails with its description after 60 s (peers that never pair up).
void wait_complete(const InFlightList& work);
// cudaStreamWaitEvent: `stream` runs nothing more until `work` has completed.
void stream_depend(cudaStream_t stream, const InFlightList& work);
// Before an operation runs on `stream`: what is in flight there completes first.
void stream_ready(cudaStream_t stream);

}  // namespace simt
