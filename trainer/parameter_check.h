// Cross-rank parameter agreement: every replica must hold bit-identical parameters.
#pragma once
#include <cstdint>

#include "parallel/communicator.h"
#include "trainer/parameters.h"

namespace rt {

// Hashes this rank's parameters (xxh3) and compares with every rank; on a difference, aborts the job
// naming the step and the ranks whose parameters differ from rank 0's.
void parameters_check_agree(Communicator& world, const Parameters& params, int64_t step);

}  // namespace rt
