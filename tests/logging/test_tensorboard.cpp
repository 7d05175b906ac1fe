// The native TensorBoard writer: CRC-32C, record framing against the golden first record, and
// the written events decoded by Debian's protoc with tests/files/tensorboard.proto.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "cseg/core/files.h"
#include "cseg/logging/tensorboard.h"
#include "fixtures.h"

using namespace cseg;

namespace {
std::string hex(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += fmt::format("{:02x}", c);
  return out;
}

/// The records of an event file, unframed (checking both CRCs).
std::vector<std::string> read_records(const std::string& path) {
  const std::string all = core::read_text(path);
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos + 12 <= all.size()) {
    uint64_t len;
    std::memcpy(&len, all.data() + pos, 8);
    uint32_t lc, dc;
    std::memcpy(&lc, all.data() + pos + 8, 4);
    EXPECT_EQ(lc, logging::masked_crc32c(all.data() + pos, 8));
    std::string data = all.substr(pos + 12, len);
    std::memcpy(&dc, all.data() + pos + 12 + len, 4);
    EXPECT_EQ(dc, logging::masked_crc32c(data.data(), data.size()));
    out.push_back(data);
    pos += 12 + len + 4;
  }
  EXPECT_EQ(pos, all.size());
  return out;
}

/// protoc --decode on one serialised Event; empty when protoc is missing.
std::string decode(const std::string& event, const test::TempDir& d) {
  const auto in = d / "event.bin";
  std::ofstream(in, std::ios::binary) << event;
  const std::string proto_dir = std::string(CSEG_SOURCE_DIR) + "/tests/files";
  const std::string cmd =
      fmt::format("protoc --proto_path={} --decode=cseg.tb.Event tensorboard.proto < {} 2>&1", proto_dir, in.string());
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

bool have_protoc() { return std::system("protoc --version > /dev/null 2>&1") == 0; }
}  // namespace

TEST(TensorBoard, Crc32cTestVectorAndGoldenFirstRecord) {
  EXPECT_EQ(logging::crc32c("123456789", 9), 0xE3069283u);
  const auto record = logging::tf_record(logging::event_file_version(1700000000.0));
  // The reference's golden record (datasets-and-formats.md) prints the double field with one
  // "00" too many (10 bytes for a 1-byte key + 8-byte double); its length (0x18 = 24 bytes) and
  // both CRCs (a37f4b22, eced8f9d) are those of the 8-byte encoding below.
  EXPECT_EQ(hex(record), "1800000000000000a37f4b220900000040fc54d9411a0d627261696e2e4576656e743a32eced8f9d");
  EXPECT_EQ(record.size(), 8u + 4u + 24u + 4u);
}

TEST(TensorBoard, WrittenEventsDecodeWithProtoc) {
  if (!have_protoc()) GTEST_SKIP() << "protoc not installed (scripts/setup.sh installs protobuf-compiler)";
  test::TempDir d;
  logging::TensorBoardWriter w((d / "run" / "step0").string());
  w.scalar("loss/ce", 0.25, 7);
  w.text("per_class_iou", "| class | IoU |\n|---|---|\n| bag | 0.5 |", 3);
  const std::string png("\x89PNG fake", 9);
  w.image("predictions", png, 2, 3, 3, 1);
  EXPECT_NE(w.path().find("events.out.tfevents."), std::string::npos);
  auto records = read_records(w.path());
  ASSERT_EQ(records.size(), 4u);
  EXPECT_NE(decode(records[0], d).find("file_version: \"brain.Event:2\""), std::string::npos);
  const auto scalar = decode(records[1], d);
  EXPECT_NE(scalar.find("step: 7"), std::string::npos) << scalar;
  EXPECT_NE(scalar.find("tag: \"loss/ce\""), std::string::npos) << scalar;
  EXPECT_NE(scalar.find("simple_value: 0.25"), std::string::npos) << scalar;
  const auto text = decode(records[2], d);
  EXPECT_NE(text.find("plugin_name: \"text\""), std::string::npos) << text;
  EXPECT_NE(text.find("dtype: 7"), std::string::npos) << text;
  EXPECT_NE(text.find("| bag | 0.5 |"), std::string::npos) << text;
  const auto image = decode(records[3], d);
  EXPECT_NE(image.find("height: 2"), std::string::npos) << image;
  EXPECT_NE(image.find("width: 3"), std::string::npos) << image;
  EXPECT_NE(image.find("colorspace: 3"), std::string::npos) << image;
}

#include "cseg/engine/trainer.h"
#include "tiny_experiment.h"

TEST(TensorBoard, TrainerWritesAStepRunPerStepAndASequenceRun) {
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  methods::FineTune ft;
  engine::Trainer(cfg, data, ft, (d / "run").string()).run();
  auto files_in = [](const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
    return out;
  };
  for (const char* run : {"step0", "step1", "sequence"})
    ASSERT_EQ(files_in(d / "run" / "tensorboard" / run).size(), 1u) << run;
  // Step runs: loss terms and the learning rate per logged iteration.
  auto step1 = read_records(files_in(d / "run" / "tensorboard" / "step1")[0]);
  std::string all;
  for (const auto& r : step1) all += r;
  for (const char* tag : {"loss/ce", "loss/total", "lr"}) EXPECT_NE(all.find(tag), std::string::npos) << tag;
  // Sequence run: mIoU per step, per-class IoU, the table and the image grid.
  auto seq = read_records(files_in(d / "run" / "tensorboard" / "sequence")[0]);
  all.clear();
  for (const auto& r : seq) all += r;
  for (const char* tag :
       {"test/miou", "test/miou_old", "test/miou_new", "per_class_iou/class_1", "test/input_truth_prediction"})
    EXPECT_NE(all.find(tag), std::string::npos) << tag;
  EXPECT_NE(all.find("\x89PNG"), std::string::npos);  // the grid is an encoded PNG
  if (have_protoc()) {
    bool found = false;
    for (const auto& r : seq) {
      auto text = decode(r, d);
      if (text.find("tag: \"test/miou\"") != std::string::npos && text.find("step: 1") != std::string::npos)
        found = true;
    }
    EXPECT_TRUE(found);
  }
}
