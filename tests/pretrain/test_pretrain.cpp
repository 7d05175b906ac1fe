// Classification pretraining (pretrain/): the Fashion-MNIST photos as classification images, a
// class-folder tree learnt above chance by every encoder family, the encoder file loaded as a
// backbone, exact resume after SIGKILL, and one-line errors for bad input.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "cseg/config/config.h"
#include "cseg/core/files.h"
#include "cseg/data/fmnist/scenes.h"
#include "cseg/data/image_io.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/pretrain/images.h"
#include "cseg/pretrain/pretrain.h"
#include "cseg/weights/load.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {

/// Three classes told apart by colour alone (a linear read-out of any features separates them),
/// `per_class` noisy 24 x 24 images each, as JPEG and PNG.
void write_colour_tree(const fs::path& root, int per_class = 8) {
  const cv::Vec3b colours[3] = {{200, 40, 40}, {40, 200, 40}, {40, 40, 200}};
  const char* names[3] = {"red", "green", "blue"};
  cv::RNG rng(7);
  for (int c = 0; c < 3; ++c) {
    fs::create_directories(root / names[c]);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat img(24, 24, CV_8UC3);
      for (int y = 0; y < 24; ++y)
        for (int x = 0; x < 24; ++x)
          for (int k = 0; k < 3; ++k)
            img.at<cv::Vec3b>(y, x)[k] = cv::saturate_cast<uint8_t>(colours[c][k] + rng.gaussian(30));
      if (i % 2)
        data::write_jpeg((root / names[c] / fmt::format("{:02d}.jpg", i)).string(), img);
      else
        data::write_image((root / names[c] / fmt::format("{:02d}.png", i)).string(),
                          img);  // RGB as BGR: still separable
    }
  }
}

std::string pretrain_yaml(const fs::path& tree, const fs::path& out, const std::string& model, int iterations) {
  return fmt::format(R"(name: tiny
seed: 1
threads: 1
output_dir: {}
model: {}
data: {{source: folder, root: {}, image_size: 32, held_out: 0.25}}
optim: {{lr: 0.05, weight_decay: 0.0}}
train: {{batch_size: 6, iterations: {}, log_every: 2, checkpoint_every: 2}}
)",
                     out.string(), model, tree.string(), iterations);
}

config::PretrainConfig parse(const fs::path& file) {
  return config::parse_pretrain(config::load({file.string(), {}, ""}));
}

struct Result {
  int code;
  std::string output;
};
Result run(const std::string& args) {
  FILE* p = popen((std::string(CSEG_BINARY) + " " + args + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST(Pretrain, FashionMnistPhotosAreTheTrainSetDrawnAsItems) {
  config::PretrainDataConfig d;
  d.image_size = 48;
  auto images = pretrain::open_classification_images(d);
  EXPECT_EQ(images->class_names().size(), 10u);
  EXPECT_EQ(images->train_size() + images->held_out_size(), 60000u);  // the train photos, t10k never
  EXPECT_EQ(images->held_out_size(), 6000u);                          // 10 % of each class
  std::vector<uint8_t> a(48 * 48 * 3), b(a.size()), c(a.size());
  images->train_image(5, 11, a.data());
  images->train_image(5, 11, b.data());
  images->train_image(5, 12, c.data());
  EXPECT_EQ(a, b);  // deterministic per seed ...
  EXPECT_NE(a, c);  // ... and drawn anew for another
  images->held_out_image(3, a.data());
  images->held_out_image(3, b.data());
  EXPECT_EQ(a, b);
}

TEST(Pretrain, LearnsASeparableTreeAndItsEncoderLoadsAsABackbone) {
  test::TempDir d;
  write_colour_tree(d / "tree");
  for (const std::string model :
       {"{name: fast_scnn}", "{name: unet, unet_channels: 8}", "{name: deeplabv3, backbone: resnet18}"}) {
    SCOPED_TRACE(model);
    const auto out = d / fmt::format("out{}", model.size());
    std::ofstream(d / "p.yaml") << pretrain_yaml(d / "tree", out, model, 60);
    const auto cfg = parse(d / "p.yaml");
    const auto results = pretrain::run_pretraining(cfg);
    EXPECT_EQ(results["classes"], (nlohmann::json{"blue", "green", "red"}));
    EXPECT_EQ(results["held_out_images"], 6);
    EXPECT_GT(results["top1"].get<double>(), 0.5) << "chance is 1/3";
    // The file holds the backbone alone and loads strictly into a segmentation model.
    auto seg = models::make_model(cfg.model, 4);
    auto report =
        weights::load_weights(*seg, pretrain::encoder_weights(cfg), {weights::LoadMode::backbone, true, true});
    EXPECT_TRUE(report.ok()) << report.to_string();
    EXPECT_EQ(report.ignored, 0);
    size_t backbone = 0;
    for (const auto& p : seg->named_parameters(true))
      for (const auto& prefix : seg->backbone_prefixes()) backbone += p.key().rfind(prefix, 0) == 0;
    EXPECT_GT(backbone, 0u);
    EXPECT_GE(report.loaded, int(backbone));
    // A rerun finds the run finished.
    EXPECT_EQ(pretrain::run_pretraining(cfg)["top1"], results["top1"]);
  }
}

TEST(Pretrain, ResumesAfterSigkillToTheSameWeights) {
  test::TempDir d;
  write_colour_tree(d / "tree");
  std::ofstream(d / "a.yaml") << pretrain_yaml(d / "tree", d / "killed", "{name: fast_scnn}", 40);
  std::ofstream(d / "b.yaml") << pretrain_yaml(d / "tree", d / "straight", "{name: fast_scnn}", 40);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(CSEG_BINARY, CSEG_BINARY, "pretrain", "-c", (d / "a.yaml").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  const fs::path last = d / "killed/checkpoints/last.pt";
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    seen = fs::exists(last);
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(seen) << "no checkpoint appeared";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(fs::exists(d / "killed/encoder.pt")) << "the run finished before the kill";
  auto resumed = run("pretrain -c " + (d / "a.yaml").string());
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming at iteration"), std::string::npos) << resumed.output;
  ASSERT_EQ(run("pretrain -c " + (d / "b.yaml").string()).code, 0);
  const auto a = weights::read_weights((d / "killed/encoder.pt").string());
  const auto b = weights::read_weights((d / "straight/encoder.pt").string());
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(Pretrain, BadInputIsAOneLineError) {
  test::TempDir d;
  write_colour_tree(d / "tree");
  auto expect_error = [&](const std::string& yaml, const std::string& part) {
    std::ofstream(d / "bad.yaml") << yaml;
    auto r = run("pretrain -c " + (d / "bad.yaml").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find(part), std::string::npos) << r.output << "\nmissing: " << part;
    const auto pos = r.output.find("error: ");
    ASSERT_NE(pos, std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\n', pos), r.output.size() - 1) << r.output;
  };
  // An unknown model, named with its key.
  expect_error(pretrain_yaml(d / "tree", d / "o1", "{name: vgg16}", 2), "model.name");
  // An empty class folder, named.
  fs::create_directories(d / "tree/empty");
  expect_error(pretrain_yaml(d / "tree", d / "o2", "{name: fast_scnn}", 2), "empty");
  fs::remove_all(d / "tree/empty");
  // A corrupt image, named (the first images of each class are read in the first batches).
  for (const auto& e : fs::directory_iterator(d / "tree/red"))
    std::ofstream(e.path(), std::ios::trunc) << "not an image";
  expect_error(pretrain_yaml(d / "tree", d / "o3", "{name: fast_scnn}", 4), "tree/red/");
  // A missing tree.
  expect_error(pretrain_yaml(d / "nowhere", d / "o4", "{name: fast_scnn}", 2), "nowhere");
}
