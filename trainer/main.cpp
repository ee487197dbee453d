// The ringtrain command-line program: `ringtrain train [--config FILE] [--set k=v ...] [--resume [PATH]]`, `ringtrain
// config` (the same options: the resolved config, or --get KEY values), `ringtrain inspect PATH`.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "core/check.h"
#include "trainer/config.h"
#include "trainer/run_config.h"
#include "trainer/stages.h"
#include "trainer/train_loop.h"

namespace {

int run(int argc, char** argv) {
  CLI::App app{"ringtrain: train causal transformers on long sequences, sharded across MPI ranks by ring attention"};
  app.require_subcommand(1);
  app.footer(rt::config_help());

  // train and config take the same options: what config the run has.
  std::string config_path, resume_path;
  std::vector<std::string> overrides;
  auto add_config_options = [&](CLI::App* sub) {
    sub->add_option("--config", config_path,
                    "YAML config file (keys below); defaults are used where it is silent. Without it, --resume "
                    "continues with the config saved in the checkpoint")
        ->check(CLI::ExistingFile);
    sub->add_option("--set", overrides, "Override one key: section.key=value (repeatable)")->take_all();
    sub->footer(rt::config_help());
    return sub->add_option("--resume", resume_path,
                           "Continue from a checkpoint: PATH (a checkpoint, or a directory of them), or without PATH "
                           "the latest in checkpoint.dir that verifies")
        ->expected(0, 1)
        ->type_name("[PATH]");
  };
  CLI::App* train = app.add_subcommand("train", "Train a model from a YAML config");
  CLI::Option* train_resume = add_config_options(train);
  CLI::App* show = app.add_subcommand("config", "Print the resolved config a train command with these options would "
                                                "run (validated), or with --get the values of some keys");
  CLI::Option* show_resume = add_config_options(show);
  std::vector<std::string> get_keys;
  show->add_option("--get", get_keys, "Print only this key's value (repeatable; one line each)");

  CLI::App* inspect = app.add_subcommand("inspect", "Print a checkpoint's manifest and verify every checksum");
  std::string inspect_path;
  inspect->add_option("PATH", inspect_path, "A checkpoint directory, or a directory of them (its latest)")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    throw rt::UserError(std::string(e.what()) + " (see ringtrain --help)");
  }

  if (*inspect) {
    rt::checkpoint_inspect(inspect_path, stdout);
    return 0;
  }
  rt::TrainOptions options;
  if (train_resume->count() > 0 || show_resume->count() > 0) options.resume = resume_path;
  rt::ConfigSources sources;
  const rt::Config config = rt::run_config(config_path, overrides, options.resume, &sources);
  rt::config_validate(config, sources);
  const std::vector<rt::Stage> stages = rt::stages_parse(config);
  for (size_t k = 0; k < stages.size(); ++k) rt::config_validate(rt::stage_config(config, stages, k));
  if (*show) {
    if (get_keys.empty()) std::fputs(rt::config_to_yaml(config).c_str(), stdout);
    for (const std::string& key : get_keys) std::printf("%s\n", rt::config_get(config, key).c_str());
    return 0;
  }
  if (stages.empty()) {
    rt::train_run(config, options);
    return 0;
  }
  // Each stage after the first resumes from the checkpoint the previous one saved at its end, with its own length,
  // RoPE, cp and batch size (the start says what changed). A stage that ran no step (the job was resumed past its
  // end) passes its checkpoint on to the next.
  std::optional<std::string> resume = options.resume;
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  for (size_t k = 0; k < stages.size(); ++k) {
    rt::TrainOptions stage = options;
    stage.stop_step = rt::stage_end(stages, k);
    stage.resume = resume;
    if (options.print && rank == 0) {
      std::printf("stage %zu of %zu | until step %ld\n", k + 1, stages.size(), stage.stop_step);
      std::fflush(stdout);
    }
    const rt::TrainResult result = rt::train_run(rt::stage_config(config, stages, k), stage);
    if (result.stopped) break;  // SIGTERM / SIGINT: saved, then out
    if (!result.losses.empty()) resume = "";  // the latest in checkpoint.dir: this stage's last step
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int provided = 0;
  MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided);
  int code = 0;
  try {
    code = run(argc, argv);
  } catch (const rt::UserError& e) {
    rt::exit_user_error(e.what());
  }
  MPI_Finalize();
  return code;
}
