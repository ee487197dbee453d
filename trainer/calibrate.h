// `ringtrain calibrate`: measures this machine (GEMM, flash-attention and elementwise rates inside real training steps
// of the model, MPI point-to-point and all-reduce between ranks of a node and across nodes) and writes a cluster file.
#pragma once
#include <cstdio>
#include <string>

#include "trainer/config.h"

namespace rt {

struct CalibrateOptions {
  std::string out;         // the cluster file to write (default configs/clusters/local.yaml beside the working dir)
  std::string name;        // the cluster's name line (default "this machine: <cpu>, <cores> cores")
  std::string hostfile;    // also measure between the hostfile's nodes (mpirun --hostfile, one rank pair per node)
  std::string agent;       // with --hostfile: the command mpirun starts its daemons with (plm_rsh_agent)
  std::string links_json;  // internal (under mpirun): measure the links only and write them here as JSON
};

// Run alone: measures the compute and memory of this node with all its cores, then the links by launching itself
// under mpirun (2 ranks here; with a hostfile, 2 per node), and writes the cluster file. Run under mpirun by a user
// (e.g. launch/cluster.sh mpirun -n 4 ringtrain calibrate): rank 0 measures compute while the others wait, then
// every pair class the ranks' hosts give. Throws rt::UserError for a hostfile that cannot be read or a launch
// that fails.
void calibrate_run(const Config& config, const CalibrateOptions& options, std::FILE* out);

}  // namespace rt
