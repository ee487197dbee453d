// The process mesh: world = dp x cp ranks, cp innermost (a sequence's ring sits on neighbouring ranks).
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace rt {

struct Mesh {
  int cp = 1, dp = 1;            // sizes
  int cp_rank = 0, dp_rank = 0;  // this rank's coordinates; world rank = dp_rank * cp + cp_rank
  std::unique_ptr<Communicator> world, cp_group, dp_group;
};

// Builds the mesh over `world`. Throws rt::UserError when cp * dp differs from the world size.
Mesh mesh_make(std::unique_ptr<Communicator> world, int cp, int dp);

}  // namespace rt
