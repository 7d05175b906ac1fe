#include "cseg/engine/evaluator.h"

#include <opencv2/imgproc.hpp>

#include "cseg/adaptation/novelty.h"
#include "cseg/data/image_codecs.h"
#include "cseg/data/loader.h"
#include "cseg/models/predictions.h"

namespace cseg::engine {

EvalOptions eval_options(const config::ExperimentConfig& cfg) {
  EvalOptions o;
  o.batch_size = cfg.eval.batch_size;
  o.workers = cfg.train.workers;
  o.mean = cfg.augment.mean;
  o.std = cfg.augment.std;
  return o;
}

namespace {
/// The loader of an evaluation pass: whole images in order, normalised as in training.
data::LoaderOptions eval_loader_options(const EvalOptions& options, const std::array<uint8_t, 256>& lut) {
  data::LoaderOptions lo;
  lo.batch_size = options.batch_size;
  lo.train = false;
  lo.workers = options.workers;
  lo.lut = lut;
  lo.augment.mean = options.mean;
  lo.augment.std = options.std;
  return lo;
}
}  // namespace

torch::Tensor seen_logits(const torch::Tensor& logits, int classes) {
  return logits.size(1) > classes ? logits.narrow(1, 0, classes) : logits;
}

metrics::ConfusionMatrix evaluate(models::Segmenter& model, const data::Dataset& dataset,
                                  const std::vector<size_t>& indices, const std::array<uint8_t, 256>& lut,
                                  const EvalOptions& options) {
  data::Loader loader(dataset, indices, eval_loader_options(options, lut));
  loader.start_epoch(0);
  const int classes = options.num_classes > 0 ? options.num_classes : model.num_classes();
  metrics::ConfusionMatrix cm(classes);
  model.eval();
  torch::NoGradGuard no_grad;
  const auto device = models::device_of(model);
  while (auto batch = loader.next()) {
    auto out = model.forward(batch->images.to(device));
    out.logits = seen_logits(out.logits, classes);
    auto pred = (options.predict ? options.predict(out) : models::predicted_classes(out.logits)).cpu();
    // Labels the model cannot know yet are ignored rather than counted as errors: a protocol that
    // keeps them maps them to 255 or 0 itself (scenario eval label maps).
    auto labels = batch->labels.masked_fill(batch->labels >= classes, 255);
    cm.update(pred, labels);
  }
  return cm;
}

std::vector<double> frame_uncertainty(models::Segmenter& model, const data::Dataset& dataset,
                                      const std::vector<size_t>& indices, const EvalOptions& options) {
  std::vector<double> out;
  if (indices.empty()) return out;
  data::Loader loader(dataset, indices, eval_loader_options(options, data::identity_lut()));
  loader.start_epoch(0);
  const int classes = options.num_classes > 0 ? options.num_classes : model.num_classes();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto device = models::device_of(model);
  while (auto batch = loader.next()) {
    const auto logits = seen_logits(model.forward(batch->images.to(device)).logits, classes);
    const auto h = adaptation::mean_normalised_entropy(logits).cpu();
    for (int64_t i = 0; i < h.size(0); ++i) out.push_back(h[i].item<double>());
  }
  return out;
}

torch::Tensor frame_features(models::Segmenter& model, const data::Dataset& dataset, const std::vector<size_t>& indices,
                             const EvalOptions& options, const std::string& tap) {
  data::Loader loader(dataset, indices, eval_loader_options(options, data::identity_lut()));
  loader.start_epoch(0);
  const bool taps = model.feature_taps();
  model.set_feature_taps(true);
  model.eval();
  torch::NoGradGuard no_grad;
  const auto device = models::device_of(model);
  std::vector<torch::Tensor> rows;
  while (auto batch = loader.next()) {
    const auto f = model.forward(batch->images.to(device)).feature(tap).to(torch::kFloat);
    rows.push_back(torch::cat({f.mean({2, 3}), f.std({2, 3}, /*unbiased=*/false)}, 1).cpu());
  }
  model.set_feature_taps(taps);
  return torch::cat(rows, 0);
}

EncodedImage prediction_grid(models::Segmenter& model, const data::Dataset& dataset, std::vector<size_t> ids,
                             const std::array<uint8_t, 256>& lut, const EvalOptions& options,
                             const data::Palette& palette) {
  if (ids.size() > 4) ids.resize(4);
  if (ids.empty()) return {};
  data::LoaderOptions lo;
  lo.batch_size = int(ids.size());
  lo.train = false;
  lo.workers = 0;
  lo.lut = lut;
  lo.augment.mean = options.mean;
  lo.augment.std = options.std;
  data::Loader loader(dataset, ids, lo);
  loader.start_epoch(0);
  auto batch = loader.next();
  if (!batch) return {};
  torch::Tensor pred;
  {
    torch::NoGradGuard no_grad;
    model.eval();
    auto out = model.forward(batch->images.to(models::device_of(model)));
    out.logits = seen_logits(out.logits, options.num_classes > 0 ? options.num_classes : model.num_classes());
    pred = (options.predict ? options.predict(out) : models::predicted_classes(out.logits)).cpu();
  }
  auto mean = torch::tensor(options.mean, torch::kFloat).view({1, 3, 1, 1});
  auto stdv = torch::tensor(options.std, torch::kFloat).view({1, 3, 1, 1});
  auto rgb = ((batch->images * stdv + mean) * 255).clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
  auto colours = torch::empty({256, 3}, torch::kUInt8);
  for (int i = 0; i < 256; ++i)
    for (int c = 0; c < 3; ++c) colours[i][c] = palette[i][c];
  auto colour = [&](const torch::Tensor& labels) { return colours.index({labels.clamp(0, 255).to(torch::kLong)}); };
  auto rows = torch::cat({rgb, colour(batch->labels), colour(pred)}, 2);  // [N, H, 3W, 3]
  auto grid = rows.reshape({-1, rows.size(2), 3}).contiguous();           // [N*H, 3W, 3]
  cv::Mat img(int(grid.size(0)), int(grid.size(1)), CV_8UC3, grid.data_ptr<uint8_t>());
  cv::Mat bgr;
  cv::cvtColor(img, bgr, cv::COLOR_RGB2BGR);
  const auto png = data::encode_png(bgr);
  return {std::string(png.begin(), png.end()), img.rows, img.cols};
}

}  // namespace cseg::engine
