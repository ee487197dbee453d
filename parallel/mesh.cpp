// Process mesh construction: checks cp * dp against the world and splits the cp and dp groups.
#include "parallel/mesh.h"

#include <string>

#include "core/check.h"

namespace rt {

Mesh mesh_make(std::unique_ptr<Communicator> world, int cp, int dp) {
  const int n = world->size();
  if (cp * dp != n)
    throw UserError("parallel.cp * parallel.dp = " + std::to_string(cp) + " * " + std::to_string(dp) + " = " +
                    std::to_string(cp * dp) + " but the job has " + std::to_string(n) +
                    " ranks; launch cp*dp ranks (mpirun -np " + std::to_string(cp * dp) +
                    ") or set parallel.cp and parallel.dp so that their product is " + std::to_string(n));
  Mesh m;
  m.cp = cp;
  m.dp = dp;
  m.cp_rank = world->rank() % cp;
  m.dp_rank = world->rank() / cp;
  m.cp_group = world->split(m.dp_rank, m.cp_rank);
  m.dp_group = world->split(m.cp_rank, m.dp_rank);
  m.world = std::move(world);
  return m;
}

}  // namespace rt
