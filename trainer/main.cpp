// The ringtrain command-line program: `ringtrain train [--config FILE] [--set k=v ...] [--resume [PATH]]`, `ringtrain
// config` (the same options: the resolved config, or --get KEY values), `ringtrain eval --checkpoint PATH`,
// `ringtrain sample --checkpoint PATH --prompt TEXT`, `ringtrain plan --cluster C.yaml`, `ringtrain calibrate`,
// `ringtrain plot RUN_DIR`, `ringtrain inspect PATH`.
#include <mpi.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>
#include <optional>
#include <string>
#include <vector>

#include "checkpoints/checkpoint.h"
#include "data/tokenizer.h"
#include "core/check.h"
#include "trainer/calibrate.h"
#include "trainer/config.h"
#include "trainer/eval.h"
#include "trainer/retrieval_eval.h"
#include "trainer/metrics.h"
#include "trainer/plan.h"
#include "trainer/sample.h"
#include "trainer/run_config.h"
#include "trainer/stages.h"
#include "trainer/train_loop.h"

namespace {

// The prompt's tokens: the bytes of --prompt or of --prompt-file, or the ids of --prompt-ids ("1,2,3").
std::vector<int32_t> sample_prompt(const std::string& text, const std::string& file, const std::string& ids) {
  if (!ids.empty()) {
    std::vector<int32_t> tokens;
    std::stringstream list(ids);
    for (std::string item; std::getline(list, item, ',');) {
      size_t used = 0;
      long value = 0;
      try {
        value = std::stol(item, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != item.size())
        throw rt::UserError("--prompt-ids '" + ids + "': '" + item + "' is not a token id; give ids such as 1,2,3");
      tokens.push_back(static_cast<int32_t>(value));
    }
    return tokens;
  }
  if (file.empty()) return rt::tokenizer_encode(text);
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw rt::UserError("--prompt-file " + file + " is empty; give a file with the prompt's text");
  return rt::tokenizer_encode(bytes);
}

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

  // eval: a checkpoint's loss on held-out data, with the checkpoint's config unless --config says otherwise.
  CLI::App* eval = app.add_subcommand("eval", "Evaluate a checkpoint on held-out data (forward only, through the "
                                              "ring): mean loss, bits per token, perplexity, loss by position; or "
                                              "with --task its retrieval accuracy over context lengths x depths");
  std::string checkpoint_path;
  rt::EvalOptions eval_options;
  uint64_t eval_seed = 0;
  eval->add_option("--checkpoint", checkpoint_path, "A checkpoint, or a directory of them (its newest that verifies)")
      ->required();
  eval->add_option("--config", config_path, "YAML config file; default: the checkpoint's own config")
      ->check(CLI::ExistingFile);
  eval->add_option("--set", overrides, "Override one key, e.g. data.path=heldout.txt or train.seq_len=4096")
      ->take_all();
  CLI::Option* sequences_option = eval->add_option("--sequences", eval_options.sequences,
                                                   "Held-out sequences of train.seq_len tokens (default 8), or with "
                                                   "--task probes per cell (default 16)");
  rt::RetrievalOptions retrieval;
  eval->add_option("--task", retrieval.task, "A retrieval grid instead of the loss: recall (the recall task with "
                                             "its key at each depth) or passkey (a number hidden in filler text)");
  eval->add_option("--lengths", retrieval.lengths, "--task: context lengths, e.g. 256,1024,4096 (default "
                                                   "train.seq_len x 1/4, 1/2, 1, 2, 4)")
      ->delimiter(',');
  eval->add_option("--depths", retrieval.depths, "--task: depths of the answer in [0, 1] (default 0,0.25,0.5,0.75,1)")
      ->delimiter(',');
  CLI::Option* seed_option =
      eval->add_option("--seed", eval_seed, "Seed of the held-out data (default train.seed + 1: for copy and recall "
                                            "another draw than training's)");
  eval->add_option("--out", eval_options.out, "The JSON report (default <log.dir>/eval.json)");

  // sample: generation from a checkpoint, with its config unless --config says otherwise.
  CLI::App* sample = app.add_subcommand("sample", "Generate text from a checkpoint: the prompt prefilled, then one "
                                                  "token at a time against a KV cache, streamed to stdout");
  rt::SampleOptions sample_options;
  std::string prompt_text, prompt_file, prompt_ids;
  sample->add_option("--checkpoint", checkpoint_path, "A checkpoint, or a directory of them (its newest that verifies)")
      ->required();
  sample->add_option("--config", config_path, "YAML config file; default: the checkpoint's own config")
      ->check(CLI::ExistingFile);
  sample->add_option("--set", overrides, "Override one key (section.key=value, repeatable)")->take_all();
  auto* prompt_group = sample->add_option_group("prompt", "what generation continues");
  prompt_group->add_option("--prompt", prompt_text, "The prompt text (its bytes are the tokens)");
  prompt_group->add_option("--prompt-file", prompt_file, "A file whose bytes are the prompt")->check(CLI::ExistingFile);
  prompt_group->add_option("--prompt-ids", prompt_ids, "The prompt as token ids: 1,2,3");
  prompt_group->require_option(1);
  sample->add_option("--max-new-tokens", sample_options.max_new_tokens, "Tokens to generate (default 200)");
  sample->add_option("--temperature", sample_options.sampling.temperature, "Softmax temperature; 0 = greedy (default 1)");
  sample->add_option("--top-k", sample_options.sampling.top_k, "Draw only among the k most likely tokens (0 = all)");
  sample->add_option("--top-p", sample_options.sampling.top_p, "Draw only within the top-p probability mass (default 1)");
  sample->add_option("--seed", sample_options.seed, "Seed of the draws (default 0)");
  sample->add_option("--context", sample_options.context, "Most tokens prompt + generation may hold (default "
                                                          "train.seq_len)");
  sample->add_flag("--ids", sample_options.ids, "Print token ids instead of the bytes they stand for");

  // plan: the planner's prediction for the config's layout on a cluster file, or a search over layouts.
  CLI::App* plan = app.add_subcommand("plan", "Predict per-rank memory and step time of the config's layout on a "
                                              "cluster (configs/clusters/*.yaml), or with --search list the layouts "
                                              "that fit, fastest first");
  rt::PlanOptions plan_options;
  plan->add_option("--config", config_path, "YAML config file (defaults where it is silent)")->check(CLI::ExistingFile);
  plan->add_option("--set", overrides, "Override one key (section.key=value, repeatable)")->take_all();
  plan->add_option("--cluster", plan_options.cluster, "The cluster file, e.g. configs/clusters/h100_ib.yaml")
      ->required();
  plan->add_flag("--json", plan_options.json, "Print one JSON object (with --search, an array of them)");
  plan->add_flag("--search", plan_options.search, "Every layout of --seq-len on --devices ranks, fastest first");
  plan->add_option("--seq-len", plan_options.seq_len, "--search: the sequence length (default train.seq_len)");
  plan->add_option("--devices", plan_options.devices, "--search: ranks in all (default cp * dp * ulysses)");
  plan->add_flag("--validate", plan_options.validate, "Run the layout (with --search: the --top fastest) a few steps "
                                                      "and print predicted against measured step time and memory");
  plan->add_option("--top", plan_options.top, "--search --validate: how many layouts to run (default 3)");
  plan->add_option("--launch", plan_options.run.launch, "--validate: the launcher of the runs (default "
                                                        "launch/run.sh; e.g. 'launch/run.sh --local-cluster')");
  plan->add_option("--steps", plan_options.run.steps, "--validate: steps per run, the first untimed (default 4)");

  // calibrate: measure this machine (and its links) into a cluster file.
  CLI::App* calibrate = app.add_subcommand("calibrate", "Measure this machine's GEMM, attention and memory rates and "
                                                        "its MPI links (launching mpirun itself, or under one), and "
                                                        "write a cluster file for `ringtrain plan`");
  rt::CalibrateOptions calibrate_options;
  calibrate->add_option("--config", config_path, "YAML config whose model's shapes are measured (default: the "
                                                 "default model)")->check(CLI::ExistingFile);
  calibrate->add_option("--set", overrides, "Override one key (section.key=value, repeatable)")->take_all();
  calibrate->add_option("--out", calibrate_options.out, "The cluster file to write (default "
                                                        "configs/clusters/local.yaml)");
  calibrate->add_option("--name", calibrate_options.name, "The cluster's name line");
  calibrate->add_option("--hostfile", calibrate_options.hostfile, "Also measure across the hostfile's nodes (mpirun "
                                                                  "--hostfile, 2 ranks per node)");
  calibrate->add_option("--agent", calibrate_options.agent, "With --hostfile: the command mpirun starts its daemons "
                                                            "with (plm_rsh_agent), as launch/run.sh --agent");
  calibrate->add_option("--links-json", calibrate_options.links_json, "Internal: measure the links only, into this "
                                                                      "JSON file")->group("");

  CLI::App* plot = app.add_subcommand("plot", "Draw a run's loss curves from its metrics.jsonl as a PNG");
  std::string plot_dir, plot_out;
  plot->add_option("RUN_DIR", plot_dir, "A run directory (a training run's log.dir)")->required();
  plot->add_option("--out", plot_out, "The PNG to write (default RUN_DIR/curves.png)");

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

  if (*plan) {
    std::optional<std::string> no_resume;
    const rt::Config config = rt::run_config(config_path, overrides, no_resume, nullptr);
    rt::config_validate(config);
    plan_options.run.config_path = config_path;
    plan_options.run.overrides = overrides;
    rt::plan_run(config, plan_options, stdout);
    return 0;
  }
  if (*calibrate) {
    std::optional<std::string> no_resume;
    const rt::Config config = rt::run_config(config_path, overrides, no_resume, nullptr);
    rt::config_validate(config);
    rt::calibrate_run(config, calibrate_options, stdout);
    return 0;
  }
  if (*plot) {
    const std::string out = plot_out.empty() ? plot_dir + "/curves.png" : plot_out;
    rt::metrics_plot(plot_dir, out);
    std::printf("%s\n", out.c_str());
    return 0;
  }
  if (*inspect) {
    rt::checkpoint_inspect(inspect_path, stdout);
    return 0;
  }
  if (*eval) {
    std::optional<std::string> from = checkpoint_path;
    const rt::Config config = rt::run_config(config_path, overrides, from, nullptr);
    rt::config_validate(config);
    eval_options.checkpoint = checkpoint_path;
    if (seed_option->count() > 0) eval_options.seed = eval_seed;
    if (!retrieval.task.empty()) {
      retrieval.checkpoint = checkpoint_path;
      retrieval.seed = eval_options.seed;
      retrieval.out = eval_options.out;
      if (sequences_option->count() > 0) retrieval.sequences = eval_options.sequences;
      rt::retrieval_run(config, retrieval);
      return 0;
    }
    RT_USER_CHECK(retrieval.lengths.empty() && retrieval.depths.empty(), "--lengths and --depths belong to a "
                                                                          "retrieval grid; give --task recall or passkey");
    rt::eval_run(config, eval_options);
    return 0;
  }
  if (*sample) {
    std::optional<std::string> from = checkpoint_path;
    const rt::Config config = rt::run_config(config_path, overrides, from, nullptr);
    rt::config_validate(config);
    sample_options.checkpoint = checkpoint_path;
    sample_options.prompt = sample_prompt(prompt_text, prompt_file, prompt_ids);
    rt::sample_run(config, sample_options, stdout);
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
