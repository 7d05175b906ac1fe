#include "cseg/engine/predictor.h"

#include <filesystem>
#include <map>
#include <opencv2/imgproc.hpp>

#include "cseg/adaptation/novelty.h"
#include "cseg/core/error.h"
#include "cseg/core/files.h"
#include "cseg/core/log.h"
#include "cseg/data/loader.h"
#include "cseg/logging/progress.h"
#include "cseg/models/predictions.h"

namespace fs = std::filesystem;

namespace cseg::engine {

namespace {

bool is_image(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

struct Item {
  std::string path;  ///< input file
  fs::path stem;     ///< output path without extension (relative structure kept)
  cv::Mat rgb;
};

torch::Tensor to_tensor(const std::vector<Item>& items, const PredictOptions& o) {
  std::vector<torch::Tensor> parts;
  for (const auto& it : items) parts.push_back(data::image_tensor(it.rgb, o.mean, o.std));
  return torch::stack(parts);
}

void write_outputs(const Item& it, const torch::Tensor& logits, const PredictOptions& o) {
  fs::create_directories(it.stem.parent_path());
  auto labels = models::predicted_classes(logits, 0);
  if (!o.dataset_labels.empty()) labels = torch::tensor(o.dataset_labels, torch::kLong).index({labels});
  labels = labels.to(torch::kUInt8).contiguous();
  cv::Mat label_map(it.rgb.rows, it.rgb.cols, CV_8UC1, labels.data_ptr<uint8_t>());
  data::write_label_png(it.stem.string() + ".png", label_map, o.palette);
  // Overlay: the photo blended with the class colours (background, label 0, left as is).
  cv::Mat overlay = it.rgb.clone();
  for (int y = 0; y < overlay.rows; ++y) {
    auto* px = overlay.ptr<cv::Vec3b>(y);
    const auto* lab = label_map.ptr<uint8_t>(y);
    for (int x = 0; x < overlay.cols; ++x) {
      if (lab[x] == 0) continue;
      const auto& c = o.palette[lab[x]];
      for (int ch = 0; ch < 3; ++ch)
        px[x][ch] = cv::saturate_cast<uint8_t>((1 - o.alpha) * px[x][ch] + o.alpha * c[ch]);
    }
  }
  data::write_jpeg(it.stem.string() + "_overlay.jpg", overlay, 90);
  if (o.save_logits) write_npy(it.stem.string() + "_logits.npy", logits);
  if (o.save_probs) write_npy(it.stem.string() + "_probs.npy", torch::softmax(logits, 0));
}

}  // namespace

std::vector<std::string> find_images(const std::string& input, const std::string& skip_dir) {
  CSEG_CHECK(fs::exists(input), "predict input '{}' does not exist", input);
  std::vector<std::string> files;
  if (fs::is_regular_file(input)) {
    CSEG_CHECK(is_image(input), "predict input '{}' is not an image (expected .jpg, .jpeg, .png or .bmp)", input);
    return {input};
  }
  const fs::path skip = skip_dir.empty() ? fs::path() : fs::weakly_canonical(skip_dir);
  for (auto it = fs::recursive_directory_iterator(input, fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && !skip.empty() && fs::weakly_canonical(it->path()) == skip) {
      it.disable_recursion_pending();  // never read back our own outputs
      continue;
    }
    if (it->is_regular_file() && is_image(it->path())) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  CSEG_CHECK(!files.empty(), "predict input folder '{}' holds no image (.jpg, .jpeg, .png, .bmp)", input);
  return files;
}

void write_npy(const std::string& path, const torch::Tensor& t) {
  auto c = t.to(torch::kFloat).contiguous();
  std::string shape;
  for (auto s : c.sizes()) shape += std::to_string(s) + ", ";
  if (c.dim() > 1) shape.resize(shape.size() - 2);
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + shape + "), }";
  // Magic, version 1.0, header length; header padded with spaces to a multiple of 64, ending in \n.
  const size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string bytes("\x93NUMPY\x01\x00", 8);
  const uint16_t len = static_cast<uint16_t>(header.size());
  bytes += char(len & 0xFF);
  bytes += char(len >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(c.data_ptr()), size_t(c.numel()) * sizeof(float));
  core::write_text_atomic(path, bytes);
}

size_t predict(models::Segmenter& model, const PredictOptions& o) {
  CSEG_CHECK(o.batch_size >= 1, "predict batch size must be >= 1 (got {})", o.batch_size);
  CSEG_CHECK(o.alpha >= 0 && o.alpha <= 1, "overlay alpha must be in [0, 1] (got {})", o.alpha);
  CSEG_CHECK(o.dataset_labels.empty() || int(o.dataset_labels.size()) >= model.num_classes(),
             "predict: {} dataset labels given for a model of {} classes", o.dataset_labels.size(),
             model.num_classes());
  const auto files = find_images(o.input, o.out);
  const bool single = fs::is_regular_file(o.input);
  fs::create_directories(o.out);
  model.eval();
  torch::NoGradGuard no_grad;
  logging::Progress progress("predict", int64_t(files.size()), o.log_every);
  std::map<std::string, std::string> stems;  // output stem -> input, to refuse a.jpg + a.png
  std::vector<Item> batch;
  size_t done = 0;
  // Per-frame uncertainty and environment changes, in file order.
  adaptation::EnvironmentChangeDetector detector(o.detector);
  std::string uncertainty_csv = "image,mean_entropy,new_environment\n";
  auto flush = [&] {
    if (batch.empty()) return;
    auto logits = model.forward(to_tensor(batch, o).to(models::device_of(model))).logits.cpu();
    const auto entropy = adaptation::mean_normalised_entropy(logits);
    for (size_t i = 0; i < batch.size(); ++i) {
      write_outputs(batch[i], logits[long(i)], o);
      const double h = entropy[long(i)].item<double>();
      const bool change = detector.update(h);
      if (change)
        log::info("predict: uncertainty jumps at {} (mean entropy {:.3f}): a new environment?", batch[i].path, h);
      uncertainty_csv += fmt::format("{},{:.5f},{}\n", batch[i].path, h, change ? 1 : 0);
    }
    done += batch.size();
    progress.update(int64_t(done));
    batch.clear();
  };
  for (const auto& f : files) {
    Item it;
    it.path = f;
    const fs::path rel = single ? fs::path(f).filename() : fs::relative(f, o.input);
    it.stem = fs::path(o.out) / rel.parent_path() / rel.stem();
    auto [at, fresh] = stems.emplace(it.stem.string(), f);
    CSEG_CHECK(fresh, "predict: '{}' and '{}' would write the same outputs ({}.png); rename one", at->second, f,
               it.stem.string());
    it.rgb = data::read_rgb(f);
    if (!batch.empty() && (batch.front().rgb.size() != it.rgb.size() || int(batch.size()) >= o.batch_size)) flush();
    batch.push_back(std::move(it));
  }
  flush();
  progress.finish();
  core::write_text_atomic((fs::path(o.out) / "uncertainty.csv").string(), uncertainty_csv);
  return files.size();
}

}  // namespace cseg::engine
