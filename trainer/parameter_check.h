// Cross-rank parameter agreement: every replica must hold bit-identical parameters.
#pragma once
#include <cstdint>
#include <vector>

#include "parallel/communicator.h"
#include "trainer/parameters.h"

namespace rt {

// The ranks whose parameters (xxh3 of the flat buffer) differ from rank 0's; the same list on every rank.
std::vector<int> parameters_differing_ranks(Communicator& world, const Parameters& params);

// Aborts the job, naming the step and the differing ranks, unless every rank holds rank 0's parameters.
void parameters_check_agree(Communicator& world, const Parameters& params, int64_t step);

}  // namespace rt
