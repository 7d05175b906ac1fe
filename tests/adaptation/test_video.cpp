// FMNIST-Scenes video sequences and the cues computed on them: the generator knows every item's
// motion, so DIS flow and warping are checked against the truth; a video that walks from one
// environment into another checks the new-environment detector.
#include <gtest/gtest.h>

#include <fstream>
#include <set>

#include "cseg/adaptation/novelty.h"
#include "cseg/adaptation/optical_flow.h"
#include "cseg/adaptation/temporal.h"
#include "cseg/core/files.h"
#include "cseg/data/datasets.h"
#include "cseg/data/fmnist/scenes.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/method.h"
#include "cseg/methods/rehearsal.h"
#include "cseg/models/segmenter.h"
#include "fixtures.h"
#include "tiny_experiment.h"

using namespace cseg;
using namespace cseg::data::fmnist;

namespace {

const IdxSet& fmnist_test_photos() {
  static const IdxSet photos = [] {
    const std::string dir = default_fmnist_dir();
    return read_idx(dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz");
  }();
  return photos;
}

cv::Mat rgb_of(const Scene& s) { return cv::Mat(s.height, s.width, CV_8UC3, const_cast<uint8_t*>(s.rgb.data())); }
cv::Mat label_of(const Scene& s) { return cv::Mat(s.height, s.width, CV_8UC1, const_cast<uint8_t*>(s.label.data())); }
cv::Mat flow_of(const Frame& f) { return cv::Mat(f.height, f.width, CV_32FC2, const_cast<float*>(f.flow.data())); }

/// Share of frame t's item pixels (labels 1..10) whose label `other` repeats.
double item_agreement(const cv::Mat& labels, const cv::Mat& other) {
  int items = 0, same = 0;
  for (int i = 0; i < labels.rows * labels.cols; ++i) {
    const uint8_t l = labels.data[i];
    if (l == 0 || l == 255) continue;
    ++items;
    same += other.data[i] == l;
  }
  EXPECT_GT(items, 0);
  return items ? double(same) / items : 0;
}

SceneOptions video_options() {
  SceneOptions o;
  o.width = o.height = 96;
  o.min_items = o.max_items = 3;
  return o;
}

}  // namespace

TEST(Video, SequencesKeepTheSceneLayoutAndMoveItsItems) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  const auto o = video_options();
  auto video = compose_sequence(fmnist_test_photos(), 0, 5000, o, 4, 11);
  ASSERT_EQ(video.size(), 4u);
  // Frame 0 is the still scene of the same seed (the sensor noise aside).
  EXPECT_EQ(video[0].label, compose_scene(fmnist_test_photos(), 0, 5000, o, 11).label);
  EXPECT_NE(video[0].label, video[3].label);  // things moved
  // Depth: items nearer than the background, one value per item layer.
  for (size_t p = 0; p < video[0].depth.size(); ++p) {
    const uint8_t l = video[0].label[p];
    if (l == 0) EXPECT_FLOAT_EQ(video[0].depth[p], 4.f);
    if (l >= 1 && l <= 10) EXPECT_LT(video[0].depth[p], 3.f);
  }
  // The true flow carries frame t's labels onto frame t+1's: warping t+1 back by it repeats t.
  for (int t = 0; t + 1 < 4; ++t) {
    cv::Mat back = adaptation::warp_by_flow(label_of(video[t + 1]), flow_of(video[t]), true, cv::Scalar(255));
    EXPECT_GT(item_agreement(label_of(video[t]), back), 0.9) << "frame " << t;
  }
}

TEST(Video, DisFlowRecoversTheGeneratorsMotion) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  double epe_sum = 0, zero_sum = 0, warped_sum = 0, unwarped_sum = 0;
  int pairs = 0;
  for (uint64_t seed : {1, 2, 3, 4}) {
    auto video = compose_sequence(fmnist_test_photos(), 0, 5000, video_options(), 3, seed);
    for (int t = 0; t + 1 < 3; ++t, ++pairs) {
      const cv::Mat truth = flow_of(video[t]);
      const cv::Mat forward = adaptation::estimate_flow(rgb_of(video[t]), rgb_of(video[t + 1]));
      const cv::Mat backward = adaptation::estimate_flow(rgb_of(video[t + 1]), rgb_of(video[t]));
      // Measured on the moving items where forward and backward flow agree (not occluded): the
      // smooth backgrounds are textureless, so DIS's flow there is whatever its neighbours say.
      const cv::Mat valid = adaptation::consistent_flow_mask(forward, backward, 1.0);
      EXPECT_GT(cv::countNonZero(valid), 0.7 * valid.total());
      std::vector<cv::Mat> xy;
      cv::split(truth, xy);
      const cv::Mat moving = ((cv::abs(xy[0]) + cv::abs(xy[1])) > 0) & valid;
      epe_sum += adaptation::end_point_error(forward, truth, moving);
      zero_sum += adaptation::end_point_error(cv::Mat::zeros(truth.size(), CV_32FC2), truth, moving);
      const cv::Mat next = label_of(video[t + 1]);
      warped_sum += item_agreement(label_of(video[t]), adaptation::warp_by_flow(next, forward, true, cv::Scalar(255)));
      unwarped_sum += item_agreement(label_of(video[t]), next);
    }
  }
  const double epe = epe_sum / pairs, zero = zero_sum / pairs;
  const double warped = warped_sum / pairs, unwarped = unwarped_sum / pairs;
  std::cout << fmt::format(
      "DIS end-point error on moving items {:.3f} px (zero flow {:.3f}); item labels of "
      "frame t+1 agree with frame t on {:.3f} warped, {:.3f} unwarped\n",
      epe, zero, warped, unwarped);
  EXPECT_LT(epe, 0.5 * zero);                   // the flow explains most of the motion
  EXPECT_LT(1 - warped, 0.5 * (1 - unwarped));  // warping at least halves the label disagreement
}

TEST(Video, FlowHelpersCheckTheirInput) {
  cv::Mat a(8, 8, CV_8UC3, cv::Scalar(0)), b(9, 8, CV_8UC3, cv::Scalar(0));
  test::expect_error([&] { adaptation::estimate_flow(a, b); }, {"differ in size"});
  test::expect_error([&] { adaptation::estimate_flow(a, a, "slow"); }, {"'slow'", "medium"});
  // A uniform shift by (2, 0): forward and backward cancel inside, not where the target leaves the frame.
  cv::Mat f(4, 6, CV_32FC2, cv::Scalar(2, 0)), g(4, 6, CV_32FC2, cv::Scalar(-2, 0));
  cv::Mat mask = adaptation::consistent_flow_mask(f, g, 0.5);
  EXPECT_EQ(mask.at<uint8_t>(0, 0), 255);
  EXPECT_EQ(mask.at<uint8_t>(0, 5), 0);
  cv::Mat labels = (cv::Mat_<uint8_t>(1, 4) << 1, 2, 3, 4);
  cv::Mat warped = adaptation::warp_by_flow(labels, cv::Mat(1, 4, CV_32FC2, cv::Scalar(1, 0)), true, cv::Scalar(255));
  EXPECT_EQ(warped.at<uint8_t>(0, 0), 2);
  EXPECT_EQ(warped.at<uint8_t>(0, 3), 255);
}

TEST(Video, FlowAndDepthFilesRoundTrip) {
  test::TempDir d;
  cv::Mat flow(5, 7, CV_32FC2);
  cv::randu(flow, -3, 3);
  data::write_flo((d / "a.flo").string(), flow);
  cv::Mat back = data::read_flo((d / "a.flo").string());
  EXPECT_EQ(cv::norm(back, flow, cv::NORM_INF), 0.0);
  cv::Mat depth(5, 7, CV_32FC1, cv::Scalar(1.234f));
  data::write_depth_png((d / "d.png").string(), depth);
  EXPECT_NEAR(data::read_depth_png((d / "d.png").string()).at<float>(2, 3), 1.234, 1e-3);
  std::ofstream((d / "bad.flo").string()) << "not a flow file at all";
  test::expect_error([&] { data::read_flo((d / "bad.flo").string()); }, {"bad.flo", "202021.25"});
  data::write_label_png((d / "l.png").string(), cv::Mat(3, 3, CV_8UC1, cv::Scalar(1)), data::voc_palette());
  test::expect_error([&] { data::read_depth_png((d / "l.png").string()); }, {"l.png", "16-bit"});
}

TEST(Video, GeneratorWritesSequencesWithFlowAndDepth) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  GenerateOptions g;
  g.out_dir = d.str();
  g.train = 7;  // sequences of 3, 3 and 1 frames
  g.val = g.test = 3;
  g.frames_per_sequence = 3;
  g.scene.width = g.scene.height = 48;
  ASSERT_TRUE(generate_scenes(g));
  std::ifstream seq((d / "ImageSets/Sequences/train.txt").string());
  std::vector<std::string> lines;
  for (std::string l; std::getline(seq, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "train_s0000_f000 train_s0000_f001 train_s0000_f002");
  EXPECT_EQ(lines[2], "train_s0002_f000");
  EXPECT_TRUE(std::filesystem::exists(d / "Flow/train_s0000_f001.flo"));
  EXPECT_FALSE(std::filesystem::exists(d / "Flow/train_s0000_f002.flo"));  // a sequence's last frame has no next
  EXPECT_TRUE(std::filesystem::exists(d / "Depth/train_s0002_f000.png"));
  EXPECT_EQ(data::read_flo((d / "Flow/train_s0000_f000.flo").string()).size(), cv::Size(48, 48));
}

namespace {
/// Frames (RGB uint8) -> a normalised [N, 3, H, W] batch, ImageNet statistics as in training.
torch::Tensor batch_of(const std::vector<const Scene*>& scenes) {
  std::vector<torch::Tensor> images;
  for (const Scene* s : scenes)
    images.push_back(torch::from_blob(const_cast<uint8_t*>(s->rgb.data()), {s->height, s->width, 3}, torch::kUInt8)
                         .permute({2, 0, 1})
                         .to(torch::kFloat)
                         .div(255));
  auto x = torch::stack(images);
  auto mean = torch::tensor({0.485, 0.456, 0.406}).view({1, 3, 1, 1}).to(torch::kFloat);
  auto std = torch::tensor({0.229, 0.224, 0.225}).view({1, 3, 1, 1}).to(torch::kFloat);
  return (x - mean) / std;
}
}  // namespace

TEST(NewEnvironment, DetectorNeedsAPersistentRise) {
  adaptation::ChangeDetectorOptions o;
  o.min_history = 5;
  o.patience = 3;
  adaptation::EnvironmentChangeDetector d(o);
  std::vector<double> series;
  for (int i = 0; i < 12; ++i) series.push_back(0.20 + 0.005 * (i % 3));  // a steady room
  series.push_back(0.60);                                                 // one glitch (a blurred frame)
  for (int i = 0; i < 6; ++i) series.push_back(0.21);
  for (int i = 0; i < 10; ++i) series.push_back(0.45 + 0.005 * (i % 2));  // a new room
  std::vector<int> flagged;
  for (size_t i = 0; i < series.size(); ++i)
    if (d.update(series[i])) flagged.push_back(static_cast<int>(i));
  // The change is confirmed on the third frame of the new room (index 19 + 2); the glitch is not one.
  EXPECT_EQ(flagged, std::vector<int>({21}));
  EXPECT_EQ(d.changes(), 1);
  // The new room is the usual now: its level is below the bar.
  EXPECT_GT(d.threshold(), 0.46);
  test::expect_error([] { adaptation::EnvironmentChangeDetector({/*window*/ 4, /*min_history*/ 8}); }, {"min_history"});
  auto logits = torch::zeros({2, 4, 3, 3});
  logits[1][2].fill_(50);  // image 1 certain everywhere, image 0 uniform
  auto h = adaptation::mean_normalised_entropy(logits);
  EXPECT_NEAR(h[0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(h[1].item<double>(), 0.0, 1e-6);
}

TEST(NewEnvironment, LocateArrivalScoresDelayAndFalseAlarms) {
  adaptation::ChangeDetectorOptions o;
  o.min_history = 5;
  o.patience = 3;
  std::vector<double> known;
  for (int i = 0; i < 12; ++i) known.push_back(0.20 + 0.005 * (i % 3));
  std::vector<double> arriving(10, 0.50);
  // Confirmed on the third frame of the new room (index 2), nothing flagged before it.
  auto a = adaptation::locate_arrival(known, arriving, o);
  EXPECT_EQ(a.detected_at, 2);
  EXPECT_EQ(a.false_alarms, 0);
  EXPECT_NEAR(a.history_mean, (4 * 0.20 + 4 * 0.205 + 4 * 0.21) / 12, 1e-12);
  EXPECT_NEAR(a.arriving_mean, 0.50, 1e-12);
  // Three unusual frames among the known room's are a change where there was none: a false alarm
  // (and the baseline restarts from them, so the arrival must rise above 0.7 to be seen).
  auto noisy = known;
  noisy.insert(noisy.begin() + 8, {0.70, 0.70, 0.70});
  a = adaptation::locate_arrival(noisy, arriving, o);
  EXPECT_EQ(a.false_alarms, 1);
  EXPECT_EQ(a.detected_at, -1);
  // A room that looks like the known one goes unnoticed; a second jump inside the new room is a
  // false alarm, not a second arrival.
  EXPECT_EQ(adaptation::locate_arrival(known, std::vector<double>(10, 0.205), o).detected_at, -1);
  std::vector<double> twice(12, 0.50);
  for (int i = 0; i < 5; ++i) twice[i] += 0.002 * (i % 2);
  for (size_t i = 8; i < twice.size(); ++i) twice[i] = 0.95;
  a = adaptation::locate_arrival(known, twice, o);
  EXPECT_EQ(a.detected_at, 2);
  EXPECT_EQ(a.false_alarms, 1);
}

TEST(NewEnvironment, FeatureShiftIsAZScoreOverChannels) {
  // Channel 0 over the known frames: 0, 2 (mean 1, sample std sqrt 2); channel 1: 5, 5 (std 0,
  // floored). A frame at the mean scores 0; one at mean + 3 std in channel 0 (and the mean in
  // channel 1) scores sqrt(9 / 2), in either direction.
  auto known = torch::tensor({0.0, 5.0, 2.0, 5.0}).reshape({2, 2});
  const double s3 = 3 * std::sqrt(2.0);
  auto frames = torch::tensor({1.0, 5.0, 1 + s3, 5.0, 1 - s3, 5.0}).reshape({3, 2});
  const auto z = adaptation::feature_shift(known, frames);
  ASSERT_EQ(z.size(), 3u);
  EXPECT_NEAR(z[0], 0, 1e-9);
  EXPECT_NEAR(z[1], std::sqrt(4.5), 1e-6);  // float inputs
  EXPECT_NEAR(z[2], std::sqrt(4.5), 1e-6);
  test::expect_error([&] { adaptation::feature_shift(known.narrow(0, 0, 1), frames); }, {"known [m >= 2, D]"});
}

TEST(NewEnvironment, DetectorFlagsTheSwitchInAVideo) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  torch::manual_seed(0);
  at::set_num_threads(1);
  SceneOptions studio;
  studio.width = studio.height = 48;
  studio.min_items = 1;
  studio.max_items = 2;
  studio.min_scale = 0.7;  // items of 20 to 34 pixels in a 48-pixel frame
  studio.max_scale = 1.2;
  // A small UNet learns the studio (train photos), briefly.
  models::ModelOptions mc;
  mc.name = "unet";
  mc.unet_channels = 8;
  auto model = models::make_model(mc, 11);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(3e-3));
  const auto& photos = fmnist_test_photos();
  model->train();
  for (int it = 0; it < 150; ++it) {
    std::vector<Scene> scenes;
    for (int b = 0; b < 8; ++b) scenes.push_back(compose_scene(photos, 0, 5000, studio, 1000 + it * 8 + b));
    std::vector<const Scene*> ptrs;
    std::vector<torch::Tensor> labels;
    for (const auto& s : scenes) {
      ptrs.push_back(&s);
      labels.push_back(
          torch::from_blob(const_cast<uint8_t*>(s.label.data()), {48, 48}, torch::kUInt8).to(torch::kLong));
    }
    auto loss =
        torch::nn::functional::cross_entropy(model->forward(batch_of(ptrs)).logits, torch::stack(labels),
                                             torch::nn::functional::CrossEntropyFuncOptions().ignore_index(255));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  model->eval();
  // The robot's video: 20 frames in the studio (test photos, unseen), then it enters the night.
  SceneOptions night = studio;
  night.environment = environment_preset("night");
  auto before = compose_sequence(photos, 5000, 5000, studio, 20, 7);
  auto after = compose_sequence(photos, 5000, 5000, night, 20, 8);
  std::vector<double> uncertainty;
  torch::NoGradGuard no_grad;
  for (const auto* video : {&before, &after})
    for (const auto& f : *video)
      uncertainty.push_back(
          adaptation::mean_normalised_entropy(model->forward(batch_of({&f})).logits)[0].item<double>());
  adaptation::EnvironmentChangeDetector detector;
  std::vector<int> flagged;
  for (size_t i = 0; i < uncertainty.size(); ++i)
    if (detector.update(uncertainty[i])) flagged.push_back(static_cast<int>(i));
  std::cout << fmt::format("entropy studio {:.3f}..{:.3f}, night {:.3f}..{:.3f}; flagged at {}\n",
                           *std::min_element(uncertainty.begin(), uncertainty.begin() + 20),
                           *std::max_element(uncertainty.begin(), uncertainty.begin() + 20),
                           *std::min_element(uncertainty.begin() + 20, uncertainty.end()),
                           *std::max_element(uncertainty.begin() + 20, uncertainty.end()), fmt::join(flagged, ", "));
  ASSERT_EQ(flagged.size(), 1u);
  EXPECT_GE(flagged[0], 20);
  EXPECT_LE(flagged[0], 20 + 5);  // within a few frames of the switch
}

TEST(Temporal, WarpedNextFrameProbabilitiesAndFusion) {
  // Class 1 on columns 2..3 in frame t, on columns 4..5 in frame t+1: a motion of (2, 0).
  auto current = torch::zeros({2, 1, 8});
  current[0].fill_(1);
  current[0][0].narrow(0, 2, 2).fill_(0);
  current[1][0].narrow(0, 2, 2).fill_(1);
  auto next = torch::zeros({2, 1, 8});
  next[0].fill_(1);
  next[0][0].narrow(0, 4, 2).fill_(0);
  next[1][0].narrow(0, 4, 2).fill_(1);
  const cv::Mat flow(1, 8, CV_32FC2, cv::Scalar(2, 0));
  auto warped = adaptation::warp_probabilities(next, flow);
  EXPECT_LT((warped.narrow(2, 0, 6) - current.narrow(2, 0, 6)).abs().max().item<double>(), 1e-6);
  EXPECT_EQ(warped[0][0][7].item<float>(), 0.f);  // beyond the frame
  // Fused where the mask says the flow holds, frame t's own elsewhere.
  cv::Mat mask(1, 8, CV_8UC1, cv::Scalar(0));
  mask.at<uint8_t>(0, 0) = 255;
  auto other = torch::full({2, 1, 8}, 0.5);
  auto fused = adaptation::fuse_with_next_frame(current, other, mask);
  EXPECT_FLOAT_EQ(fused[0][0][0].item<float>(), 0.75f);
  EXPECT_FLOAT_EQ(fused[0][0][1].item<float>(), 1.f);
}

TEST(Temporal, NextFrameCorrectsAWrongPseudoLabel) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  GenerateOptions g;
  g.out_dir = d.str();
  g.train = 6;  // two sequences of three frames
  g.val = g.test = 1;
  g.frames_per_sequence = 3;
  g.scene.width = g.scene.height = 64;
  g.scene.min_items = g.scene.max_items = 2;
  g.scene.min_scale = 1.0;
  g.scene.max_scale = 1.6;
  ASSERT_TRUE(generate_scenes(g));
  data::DatasetOptions c;
  c.name = "fmnist_scenes";
  c.root = d.str();
  auto frames = data::make_dataset(c, "train");
  ASSERT_EQ(frames->sequences().size(), 2u);
  // A teacher that knows each frame's truth (confidence 0.85), except in frame 0 of each
  // sequence, where it is confidently wrong (class 10 at 0.80) on the items.
  const std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  std::vector<torch::Tensor> inputs, truth;
  for (size_t i = 0; i < frames->size(); ++i) {
    auto s = frames->load(i);
    auto t = torch::from_blob(s.image.data, {64, 64, 3}, torch::kUInt8).permute({2, 0, 1}).to(torch::kFloat).div(255);
    inputs.push_back(((t - torch::tensor(mean).to(torch::kFloat).view({3, 1, 1})) /
                      torch::tensor(std).to(torch::kFloat).view({3, 1, 1}))
                         .unsqueeze(0));
    auto m = torch::from_blob(s.mask.data, {64, 64}, torch::kUInt8).to(torch::kLong).clone();
    truth.push_back(m.masked_fill(m == 255, 0));
  }
  std::set<size_t> corrupted;
  for (const auto& seq : frames->sequences()) corrupted.insert(seq.front());
  auto teacher = [&](const torch::Tensor& x) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!torch::allclose(x, inputs[i], 1e-6, 1e-6)) continue;
      auto logits = 4 * torch::one_hot(truth[i], 11).permute({2, 0, 1}).to(torch::kFloat);
      if (corrupted.count(i)) logits[10] += 6 * (truth[i] > 0).to(torch::kFloat);
      return logits.unsqueeze(0);
    }
    ADD_FAILURE() << "the teacher was shown an image that is not a frame";
    return torch::zeros({1, 11, 64, 64});
  };
  adaptation::TemporalLabelStats st;
  auto labels = adaptation::frame_pseudo_labels(*frames, teacher, mean, std, 0, 0, true, &st);
  EXPECT_EQ(st.frames, 6u);
  EXPECT_EQ(st.fused, 4u);
  EXPECT_GT(st.consistent_fraction, 0.7);
  int item_pixels = 0, still_wrong = 0;
  for (size_t i : corrupted) {
    const auto t = truth[i];
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        if (t[y][x].item<int64_t>() == 0) continue;
        ++item_pixels;
        still_wrong += labels[i].at<uint8_t>(y, x) == 10;
      }
  }
  ASSERT_GT(item_pixels, 100);
  std::cout << fmt::format("corrupted item pixels still labelled wrong after fusion: {:.3f}\n",
                           double(still_wrong) / item_pixels);
  EXPECT_LT(still_wrong, item_pixels / 3);  // without the next frame: all of them
}

TEST(Temporal, AnUnlabelledVideoEnvironmentTrainsFromTemporalPseudoLabels) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  auto c = test::fmnist_video_domain(d.path());  // a: still scenes, labelled; b: video, unlabelled
  c.adaptation.temporal = true;
  auto data = engine::open_experiment_data(c, (d / "cache").string(), 1);
  auto method = methods::make_method("finetune", {});
  auto r = engine::Trainer(c, data, *method, (d / "run/finetune").string()).run();
  EXPECT_EQ(r["steps"].size(), 2u);
  const auto& made = r["steps"][1]["pseudo_labels"];
  EXPECT_EQ(made["frames"], 8);
  EXPECT_EQ(made["fused_with_next"], 6);  // two sequences of four frames
  EXPECT_GT(made["flow_consistent_fraction"].get<double>(), 0.5);
  EXPECT_TRUE(r["steps"][0]["pseudo_labels"].is_null());
  {  // Whole-frame labels fixed for the step but not fused: the same frames, none fused.
    auto f = c;
    f.adaptation.temporal = false;
    f.adaptation.fixed_labels = true;
    f.output_dir = (d / "fixed").string();
    auto rf = engine::Trainer(f, data, *methods::make_method("finetune", {}), (d / "fixed/finetune").string()).run();
    const auto& fixed = rf["steps"][1]["pseudo_labels"];
    EXPECT_EQ(fixed["kind"], "fixed");
    EXPECT_EQ(fixed["frames"], 8);
    EXPECT_EQ(fixed["fused_with_next"], 0);
    EXPECT_EQ(made["kind"], "temporal");
  }
  // Frames without a confident pseudo-label stay ignored (255), whatever the label protocol:
  // MiB's table maps a mask's 255 to background, which must not reach pseudo-labels.
  c.scenario.protocol = "mib";
  c.adaptation.threshold = 1.0;  // nothing is that confident: every pixel is "none"
  c.output_dir = (d / "mib").string();
  auto data_mib = engine::open_experiment_data(c, (d / "cache").string(), 1);
  auto replay = methods::make_method("replay", {{"memory", "100"}, {"policy", "experience_balanced"}});
  engine::Trainer(c, data_mib, *replay, (d / "mib/replay").string()).run();
  const auto& buffer = static_cast<const methods::Rehearsal&>(*replay).buffer();
  int from_video = 0;
  for (size_t i = 0; i < buffer.size(); ++i) {
    if (buffer[i].step != 1) continue;
    ++from_video;
    EXPECT_TRUE(buffer[i].label.eq(255).all().item<bool>()) << "item " << i;
  }
  EXPECT_GT(from_video, 0);
  // An environment without sequences cannot be learnt with temporal consistency.
  c.scenario.environments[1].root = (d / "a").string();
  c.output_dir = (d / "run2").string();
  auto data2 = engine::open_experiment_data(c, (d / "cache").string(), 1);
  test::expect_error([&] { engine::Trainer(c, data2, *method, (d / "run2/finetune").string()).run(); },
                     {"adaptation.temporal", "no video sequences", "--frames"});
}
