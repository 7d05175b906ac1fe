// Consistency losses for unlabelled environments (temporal, depth-edge, scale) and the loader
// inputs they need: the next frame with its flow and the depth map, kept aligned with the frame
// through scaling, cropping and mirroring.
#include <gtest/gtest.h>

#include <fstream>

#include "cseg/adaptation/consistency.h"
#include "cseg/adaptation/optical_flow.h"
#include "cseg/adaptation/temporal.h"
#include "cseg/core/files.h"
#include "cseg/data/datasets.h"
#include "cseg/data/loader.h"
#include "cseg/engine/experiment_data.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/method.h"
#include "fixtures.h"
#include "tiny_experiment.h"

using namespace cseg;

namespace {

/// Confident logits [1, C, H, W] for a label map [H, W] (255 -> uniform).
torch::Tensor logits_of(const torch::Tensor& labels, int64_t classes) {
  auto l = labels.clone();
  auto ignore = l.eq(255);
  l.masked_fill_(ignore, 0);
  auto onehot = torch::one_hot(l, classes).permute({2, 0, 1}).to(torch::kFloat) * 10;
  return onehot.masked_fill(ignore.unsqueeze(0), 0).unsqueeze(0);
}

/// A normalised [3, H, W] image back to H x W x 3 uint8 RGB.
cv::Mat rgb_image(const torch::Tensor& image, const data::AugmentOptions& a) {
  auto mean = torch::tensor({a.mean[0], a.mean[1], a.mean[2]}, torch::kFloat).view({3, 1, 1});
  auto std = torch::tensor({a.std[0], a.std[1], a.std[2]}, torch::kFloat).view({3, 1, 1});
  auto u8 = ((image * std + mean) * 255).round().clamp(0, 255).to(torch::kUInt8).permute({1, 2, 0}).contiguous();
  return cv::Mat(int(u8.size(0)), int(u8.size(1)), CV_8UC3, u8.data_ptr<uint8_t>()).clone();
}

}  // namespace

TEST(Consistency, WarpToCurrentFollowsTheFlow) {
  // A ramp image moved 2 px right and 1 px down: the next frame warped by a (2, 1) flow is the
  // current one wherever the target stays in the frame.
  auto current = torch::arange(8 * 10, torch::kFloat).view({1, 1, 8, 10});
  auto next = torch::zeros_like(current);
  next.narrow(2, 1, 7).narrow(3, 2, 8).copy_(current.narrow(2, 0, 7).narrow(3, 0, 8));
  auto flow = torch::zeros({1, 2, 8, 10});
  flow[0][0].fill_(2);
  flow[0][1].fill_(1);
  torch::Tensor inside;
  auto warped = adaptation::warp_to_current(next, flow, &inside);
  EXPECT_TRUE(inside[0].narrow(0, 0, 7).narrow(1, 0, 8).all().item<bool>());
  EXPECT_FALSE(inside[0][7][0].item<bool>());  // y + 1 leaves the frame
  EXPECT_FALSE(inside[0][0][8].item<bool>());  // x + 2 leaves the frame
  EXPECT_LT((warped - current).abs().masked_select(inside.unsqueeze(1)).max().item<double>(), 1e-4);
  // Sub-pixel flow agrees with OpenCV's bilinear remap (adaptation::warp_by_flow), which rounds
  // positions to 1/32 pixel.
  cv::Mat img(8, 10, CV_32FC1), f(8, 10, CV_32FC2);
  cv::randu(img, 0, 1);
  cv::randu(f, -1.5, 1.5);
  auto t_img = torch::from_blob(img.data, {1, 1, 8, 10}, torch::kFloat);
  auto t_flow = torch::from_blob(f.data, {1, 8, 10, 2}, torch::kFloat).permute({0, 3, 1, 2});
  auto ours = adaptation::warp_to_current(t_img, t_flow, &inside);
  cv::Mat theirs = adaptation::warp_by_flow(img, f, false);
  auto t_theirs = torch::from_blob(theirs.data, {1, 1, 8, 10}, torch::kFloat);
  EXPECT_LT((ours - t_theirs).abs().masked_select(inside.unsqueeze(1)).max().item<double>(), 0.02);
  test::expect_error([&] { adaptation::warp_to_current(t_img, torch::zeros({1, 2, 4, 4})); }, {"warp_to_current"});
}

TEST(Consistency, TemporalLossIsZeroForAConsistentPairAndPullsAnInconsistentOne) {
  // Frame t: class 1 on columns 2..3; frame t+1: on columns 4..5; flow (2, 0).
  auto labels_t = torch::zeros({6, 10}, torch::kLong), labels_next = torch::zeros({6, 10}, torch::kLong);
  labels_t.narrow(1, 2, 2).fill_(1);
  labels_next.narrow(1, 4, 2).fill_(1);
  auto flow = torch::zeros({1, 2, 6, 10});
  flow[0][0].fill_(2);
  auto valid = torch::ones({1, 6, 10}, torch::kBool);
  auto next = logits_of(labels_next, 3);
  auto consistent = logits_of(labels_t, 3).requires_grad_(true);
  auto zero = adaptation::temporal_consistency_loss(consistent, next, flow, valid);
  EXPECT_LT(zero.item<double>(), 1e-3);
  // Frame t predicted where the item is in frame t+1 (not moved back): inconsistent.
  auto wrong = logits_of(labels_next, 3).requires_grad_(true);
  auto loss = adaptation::temporal_consistency_loss(wrong, next, flow, valid);
  EXPECT_GT(loss.item<double>(), 1.0);
  loss.backward();
  EXPECT_GT(wrong.grad().abs().sum().item<double>(), 0);
  // Pixels where the flow does not hold are not counted: none valid -> 0.
  EXPECT_EQ(adaptation::temporal_consistency_loss(wrong, next, flow, torch::zeros_like(valid)).item<double>(), 0);
  // The flow is what makes them inconsistent: the same pair without motion agrees.
  EXPECT_LT(adaptation::temporal_consistency_loss(wrong, next, torch::zeros_like(flow), valid).item<double>(), 1e-3);
}

TEST(Consistency, DepthEdgeLossLeavesClassChangesToDepthEdges) {
  // Two surfaces: columns 0..4 at 2 m, 5..9 at 3 m.
  auto depth = torch::full({1, 6, 10}, 2.0);
  depth[0].narrow(1, 5, 5).fill_(3.0);
  auto at_edge = torch::zeros({6, 10}, torch::kLong), off_edge = torch::zeros({6, 10}, torch::kLong);
  at_edge.narrow(1, 5, 5).fill_(1);
  off_edge.narrow(1, 3, 7).fill_(1);  // the class changes inside the 2 m surface
  const double aligned = adaptation::depth_edge_loss(logits_of(at_edge, 2), depth, 0.05).item<double>();
  const double misaligned = adaptation::depth_edge_loss(logits_of(off_edge, 2), depth, 0.05).item<double>();
  EXPECT_LT(aligned, 1e-3);
  EXPECT_GT(misaligned, 0.05);
  // Unknown depth (0) takes no part: with the 2 m surface unknown there is no pair left across
  // the misplaced change.
  auto unknown = depth.clone();
  unknown[0].narrow(1, 0, 5).fill_(0);
  EXPECT_LT(adaptation::depth_edge_loss(logits_of(off_edge, 2), unknown, 0.05).item<double>(), 1e-3);
  test::expect_error([&] { adaptation::depth_edge_loss(logits_of(at_edge, 2), depth, 0); }, {"depth step"});
}

TEST(Consistency, LoaderKeepsNextFrameFlowAndDepthAlignedThroughAugmentation) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  test::write_fmnist_scenes(d.path(), 8, 4, 3);
  data::DatasetOptions dc;
  dc.name = "fmnist_scenes";
  dc.root = d.str();
  auto ds = data::make_dataset(dc, "train");
  ASSERT_EQ(ds->sequences().size(), 2u);
  data::LoaderOptions lo;
  lo.batch_size = 8;
  lo.workers = 0;
  lo.augment.crop_size = 40;
  lo.augment.scale_min = 0.7;
  lo.augment.scale_max = 1.4;
  lo.lut = data::identity_lut();
  lo.depth = lo.next_frame = true;
  lo.prepare = [](data::Sample& s) { adaptation::add_flow_to_next(s); };
  std::vector<size_t> all(ds->size());
  std::iota(all.begin(), all.end(), size_t(0));
  double warped_error = 0, still_error = 0, collated_epe = 0, zero_epe = 0;
  int64_t last_frames = 0;
  for (int epoch = 0; epoch < 4; ++epoch) {  // several draws of scale, crop and flip
    data::Loader loader(*ds, all, lo);
    loader.start_epoch(epoch);
    auto b = loader.next();
    ASSERT_TRUE(b.has_value());
    // Depth follows the labels pixel for pixel: background at 4 m, items nearer.
    auto bg = b->labels.eq(0), item = b->labels.ge(1).logical_and(b->labels.le(10));
    EXPECT_TRUE(b->depth.masked_select(bg).eq(4.0).all().item<bool>());
    EXPECT_TRUE(b->depth.masked_select(item).lt(4.0).all().item<bool>());
    // The next frame warped back by the collated flow looks like this frame where the flow holds;
    // a flow left unscaled or unmirrored would not.
    torch::Tensor inside;
    auto warped = adaptation::warp_to_current(b->next_images, b->flow, &inside);
    auto keep = b->flow_valid.logical_and(inside).logical_and(item).unsqueeze(1).expand_as(warped);
    ASSERT_GT(keep.sum().item<int64_t>(), 300);
    warped_error += (warped - b->images).abs().masked_select(keep).mean().item<double>();
    still_error += (b->next_images - b->images).abs().masked_select(keep).mean().item<double>();
    for (int64_t i = 0; i < b->size(); ++i) {
      last_frames += !b->flow_valid[i].any().item<bool>();
      // The collated flow against DIS run afresh on the augmented pair, over moving item pixels.
      cv::Mat frame = rgb_image(b->images[i], lo.augment), next = rgb_image(b->next_images[i], lo.augment);
      cv::Mat fresh = adaptation::estimate_flow(frame, next);
      auto t_fresh = torch::from_blob(fresh.data, {fresh.rows, fresh.cols, 2}, torch::kFloat).permute({2, 0, 1});
      auto on = b->flow_valid[i].logical_and(item[i]).logical_and(b->flow[i].norm(2, 0).gt(0.5));
      if (!on.any().item<bool>()) continue;
      collated_epe += (b->flow[i] - t_fresh).norm(2, 0).masked_select(on).mean().item<double>();
      zero_epe += t_fresh.norm(2, 0).masked_select(on).mean().item<double>();
    }
  }
  EXPECT_LT(collated_epe, 0.3 * zero_epe) << collated_epe << " vs " << zero_epe;
  EXPECT_LT(warped_error, 0.6 * still_error) << warped_error << " vs " << still_error;
  EXPECT_EQ(last_frames, 4 * 2);  // each sequence's last frame has no next: nothing holds
  // A dataset without sequences cannot give next frames.
  test::TempDir still;
  test::write_fmnist_scenes(still.path(), 4, 1, 4);
  dc.root = still.str();
  auto still_ds = data::make_dataset(dc, "train");
  test::expect_error([&] { data::Loader(*still_ds, {0, 1}, lo); }, {"no video sequences"});
}

TEST(Consistency, AnUnlabelledVideoStepAddsTheConsistencyTerms) {
  if (!test::have_fmnist()) GTEST_SKIP() << "dataset-fashion-mnist is not installed (scripts/setup.sh installs it)";
  test::TempDir d;
  auto c = test::fmnist_video_domain(d.path());
  c.adaptation.temporal_consistency = 1;
  c.adaptation.depth_edges = 1;
  c.adaptation.student_scale = 0.3;
  c.train.log_every = 1;
  auto data = engine::open_experiment_data(c, (d.path() / "cache").string(), 1);
  auto method = methods::make_method("finetune", {});
  auto r = engine::Trainer(c, data, *method, (d.path() / "run/finetune").string()).run();
  ASSERT_EQ(r["steps"].size(), 2u);
  int lines_with_terms = 0;
  std::ifstream metrics((d.path() / "run/finetune/metrics.jsonl").string());
  for (std::string line; std::getline(metrics, line);) {
    auto j = nlohmann::json::parse(line);
    if (j["step"] != 1) {
      EXPECT_FALSE(j.contains("loss_temporal_consistency"));  // a labelled step has none
      continue;
    }
    ASSERT_TRUE(j.contains("loss_temporal_consistency") && j.contains("loss_depth_edges")) << line;
    EXPECT_GT(j["loss_temporal_consistency"].get<double>(), 0);  // the frames move: the student disagrees
    EXPECT_GT(j["loss_depth_edges"].get<double>(), 0);
    ++lines_with_terms;
  }
  EXPECT_GT(lines_with_terms, 0);
  // Still scenes without depth cannot feed either loss.
  c.scenario.environments[1].root = (d.path() / "a").string();
  c.output_dir = (d.path() / "run2").string();
  auto data2 = engine::open_experiment_data(c, (d.path() / "cache").string(), 1);
  test::expect_error([&] { engine::Trainer(c, data2, *method, (d.path() / "run2/finetune").string()).run(); },
                     {"adaptation.temporal_consistency", "no video sequences"});
  c.adaptation.temporal_consistency = 0;
  c.output_dir = (d.path() / "run3").string();
  auto data3 = engine::open_experiment_data(c, (d.path() / "cache").string(), 1);
  test::expect_error([&] { engine::Trainer(c, data3, *method, (d.path() / "run3/finetune").string()).run(); },
                     {"adaptation.depth_edges", "no depth maps"});
}
