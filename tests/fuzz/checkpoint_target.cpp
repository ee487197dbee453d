// Fuzz target: a whole checkpoint directory built from the input, through everything that reads one: `ringtrain
// inspect` (checkpoint_inspect), the config `--resume` alone takes from it (run_config), and resuming a training run
// of tests/fuzz/fuzz_model.yaml's model from it (TrainCheckpoints::resume: verify, shape checks, upload to the model
// and AdamW), on one MPI rank of this process.
//
// Input: one mode byte, then manifest.pb, model.safetensors, optimizer.safetensors and config.json, each as a 4-byte
// little-endian length and its bytes (a length past the input's end takes what is left; absent files stay absent).
// Mode bit 0 set: before writing, the target records each file's true size and checksum (and each tensor's, where its
// range lies inside its file) in the manifest, when the manifest parses, so that the fuzzer's changes get past the
// checksums to the safetensors headers and the trainer's checks.
#include <mpi.h>
#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "checkpoints/manifest.h"
#include "tests/fuzz/fuzz_targets.h"
#include "tests/test_paths.h"
#include "trainer/optimizer.h"
#include "trainer/run_config.h"
#include "trainer/run_setup.h"
#include "trainer/train_checkpoint.h"

namespace rt::fuzz {

std::string manifest_with_checksum(std::string_view body);  // manifest_target.cpp

namespace {

namespace fs = std::filesystem;

constexpr const char* kFiles[] = {kManifestFile, kModelFile, kOptimizerFile, kHfConfigFile};

// One training run's parts, built once: the model and optimizer the checkpoints are resumed into.
struct Trainer {
  Config config;
  RunSetup setup;
  std::unique_ptr<AdamW> optimizer;
  std::unique_ptr<TrainCheckpoints> checkpoints;
};

Trainer& trainer() {
  static Trainer* t = [] {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      int provided = 0;
      MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
      std::atexit([] { MPI_Finalize(); });
    }
    auto* made = new Trainer;
    made->config = config_load(rt_test::source_dir() + "/tests/fuzz/fuzz_model.yaml");
    made->config.log.dir = scratch_dir() + "/run";
    made->setup = run_setup_make(made->config);
    made->optimizer = std::make_unique<AdamW>(*made->setup.backend, made->setup.model->params(), made->config.train);
    made->checkpoints = std::make_unique<TrainCheckpoints>(made->config, made->setup.mesh, *made->setup.backend,
                                                           *made->setup.model, *made->optimizer, false);
    return made;
  }();
  return *t;
}

// The files of the input, in kFiles order; nullopt for those it does not reach.
std::vector<std::optional<std::string>> split_files(std::string_view in) {
  std::vector<std::optional<std::string>> files;
  for (size_t i = 0; i < std::size(kFiles); ++i) {
    if (in.size() < 4) {
      files.emplace_back();
      continue;
    }
    uint32_t n = 0;
    for (int b = 0; b < 4; ++b) n |= static_cast<uint32_t>(static_cast<unsigned char>(in[b])) << (8 * b);
    in.remove_prefix(4);
    const size_t take = std::min<size_t>(n, in.size());
    files.emplace_back(std::string(in.substr(0, take)));
    in.remove_prefix(take);
  }
  return files;
}

// The manifest with every file's and tensor's true size and checksum, when it parses; else as it was.
std::string fix_checksums(const std::string& manifest_bytes, const std::vector<std::optional<std::string>>& files) {
  checkpoint::Manifest m;
  std::string_view body = manifest_bytes;
  if (body.size() >= 9) body.remove_suffix(9);  // its own checksum, recomputed below
  if (!m.ParseFromArray(body.data(), static_cast<int>(body.size()))) return manifest_bytes;
  auto bytes_of = [&](const std::string& name) -> const std::string* {
    for (size_t i = 1; i < std::size(kFiles); ++i)
      if (name == kFiles[i] && files[i]) return &*files[i];
    return nullptr;
  };
  for (checkpoint::FileEntry& f : *m.mutable_files())
    if (const std::string* b = bytes_of(f.name())) {
      f.set_size(b->size());
      f.set_xxh3(XXH3_64bits(b->data(), b->size()));
    }
  for (checkpoint::TensorEntry& t : *m.mutable_tensors())
    if (const std::string* b = bytes_of(t.file()); b && t.offset() <= b->size() && t.length() <= b->size() - t.offset())
      t.set_xxh3(XXH3_64bits(b->data() + t.offset(), t.length()));
  return manifest_encode(m);
}

}  // namespace

bool checkpoint_target(const uint8_t* data, size_t size) {
  Trainer& t = trainer();  // built on the first call: libFuzzer's empty input from LLVMFuzzerInitialize
  if (size == 0) return false;
  std::vector<std::optional<std::string>> files = split_files(as_text(data + 1, size - 1));
  if ((data[0] & 1) && files[0]) *files[0] = fix_checksums(*files[0], files);

  const std::string dir = scratch_dir() + "/step_00000001";
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir);
  for (size_t i = 0; i < std::size(kFiles); ++i)
    if (files[i]) write_file(dir + "/" + kFiles[i], *files[i]);

  static std::FILE* devnull = std::fopen("/dev/null", "w");
  const bool inspected = result_or_user_error([&] { checkpoint_inspect(dir, devnull); });
  const bool configured = result_or_user_error([&] {
    std::optional<std::string> resume = dir;
    ConfigSources sources;
    run_config("", {}, resume, &sources);
  });
  const bool resumed = result_or_user_error([&] { t.checkpoints->resume(dir); });
  // What resuming accepts, inspect verifies too.
  if (resumed && !inspected) wrong_result("a checkpoint that resumes but that inspect refuses");
  return inspected && configured && resumed;
}

}  // namespace rt::fuzz
