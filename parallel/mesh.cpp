// Process mesh construction: checks cp * dp * ulysses against the world and splits the cp, dp and Ulysses groups.
#include "parallel/mesh.h"

#include <sstream>
#include <string>

#include "core/check.h"

namespace rt {

Mesh mesh_make(std::unique_ptr<Communicator> world, int cp, int dp, int ulysses) {
  const int n = world->size(), product = cp * dp * ulysses;
  if (product != n) {
    std::ostringstream why;
    if (ulysses == 1)
      why << "parallel.cp * parallel.dp = " << cp << " * " << dp << " = " << product << " but the job has " << n
          << " ranks; launch cp*dp ranks (mpirun -np " << product
          << ") or set parallel.cp and parallel.dp so that their product is " << n;
    else
      why << "parallel.cp * parallel.dp * parallel.ulysses = " << cp << " * " << dp << " * " << ulysses << " = "
          << product << " but the job has " << n << " ranks; launch cp*dp*ulysses ranks (mpirun -np " << product
          << ") or set parallel.cp, parallel.dp and parallel.ulysses so that their product is " << n;
    throw UserError(why.str());
  }
  Mesh m;
  m.cp = cp;
  m.dp = dp;
  m.ulysses = ulysses;
  const int r = world->rank();
  m.ulysses_rank = r % ulysses;
  m.cp_rank = r / ulysses % cp;
  m.dp_rank = r / ulysses / cp;
  m.cp_group = world->split(m.dp_rank * ulysses + m.ulysses_rank, m.cp_rank);
  m.dp_group = world->split(m.cp_rank * ulysses + m.ulysses_rank, m.dp_rank);
  m.ulysses_group = world->split(m.dp_rank * cp + m.cp_rank, m.ulysses_rank);
  m.world = std::move(world);
  return m;
}

std::vector<Chunk> mesh_chunks(const Mesh& mesh, int64_t seq_len, Sharding sharding) {
  return shard_chunks(seq_len, mesh.cp, mesh.cp_rank, sharding, mesh.ulysses, mesh.ulysses_rank);
}

}  // namespace rt
