// Skips the current GoogleTest test, with the reason, when a device cannot be used here (CPU-only build, no GPU).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "core/backend.h"

// "no CUDA device is visible (cudaGetDeviceCount: ...)" or "this ringtrain was built without CUDA (...)".
#define RT_SKIP_UNLESS_DEVICE(device)                                             \
  do {                                                                            \
    const std::string rt_skip_why_ = ::rt::device_unavailable_reason(device);    \
    if (!rt_skip_why_.empty()) GTEST_SKIP() << rt_skip_why_;                      \
  } while (0)
