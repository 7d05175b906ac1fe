// Checked, atomic writes: a full disk (simulated with /dev/full, which fails every write with
// ENOSPC) is an error naming the file, and leaves neither a half-written target nor a temporary.
#include <gtest/gtest.h>

#include <filesystem>

#include "cseg/config/experiment.h"
#include "cseg/core/files.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/models/segmenter.h"
#include "fixtures.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {
bool have_dev_full() { return fs::exists("/dev/full"); }
}  // namespace

TEST(Files, AFullDiskIsAnErrorNamingTheFileAndLeavesItAsItWas) {
  if (!have_dev_full()) GTEST_SKIP() << "no /dev/full";
  test::TempDir d;
  const std::string path = (d / "results.json").string();
  core::write_text_atomic(path, "old");
  // The temporary file write_text_atomic will use is a link to /dev/full: the write fails.
  fs::create_symlink("/dev/full", core::temp_path_for(path));
  test::expect_error([&] { core::write_text_atomic(path, std::string(1 << 16, 'x')); },
                     {"results.json", "left as it was", "disk full"});
  EXPECT_EQ(core::read_text(path), "old");
  EXPECT_FALSE(fs::exists(fs::symlink_status(core::temp_path_for(path))));  // no temporary left
  // Appended lines (metrics.jsonl) are checked too.
  test::expect_error([] { core::append_line("/dev/full", std::string(1 << 16, 'x')); }, {"/dev/full", "disk full"});
}

TEST(Files, ACheckpointThatCannotBeWrittenLeavesTheLastOneIntact) {
  if (!have_dev_full()) GTEST_SKIP() << "no /dev/full";
  test::TempDir d;
  const std::string path = (d / "step0_last.pt").string();
  models::ModelOptions mc;
  mc.name = "fast_scnn";
  auto model = models::make_model(mc, 3);
  engine::TrainState state;
  state.heads = model->head_sizes();
  state.iteration = 5;
  engine::save_checkpoint(path, *model, nullptr, nullptr, state);
  fs::create_symlink("/dev/full", core::temp_path_for(path));
  state.iteration = 9;
  test::expect_error([&] { engine::save_checkpoint(path, *model, nullptr, nullptr, state); },
                     {"step0_last.pt", "left as it was"});
  EXPECT_EQ(engine::read_checkpoint_state(path).iteration, 5);
  EXPECT_FALSE(fs::exists(fs::symlink_status(core::temp_path_for(path))));
}
