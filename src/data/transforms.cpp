#include "cseg/data/transforms.h"

#include <opencv2/imgproc.hpp>

namespace cseg::data {

void remap_labels(cv::Mat& mask, const std::array<uint8_t, 256>& lut) {
  cv::Mat table(1, 256, CV_8UC1, const_cast<uint8_t*>(lut.data()));
  cv::LUT(mask, table, mask);
}

void augment_train(Sample& s, const config::AugmentConfig& cfg, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double scale = cfg.scale_min + u(rng) * (cfg.scale_max - cfg.scale_min);
  if (std::abs(scale - 1.0) > 1e-6) {
    cv::Size size(std::max(1, int(std::lround(s.image.cols * scale))),
                  std::max(1, int(std::lround(s.image.rows * scale))));
    cv::resize(s.image, s.image, size, 0, 0, cv::INTER_LINEAR);
    cv::resize(s.mask, s.mask, size, 0, 0, cv::INTER_NEAREST);
    if (!s.saliency.empty()) cv::resize(s.saliency, s.saliency, size, 0, 0, cv::INTER_NEAREST);
  }
  const int crop = cfg.crop_size;
  const int pad_h = std::max(0, crop - s.image.rows), pad_w = std::max(0, crop - s.image.cols);
  if (pad_h > 0 || pad_w > 0) {
    // The mean colour becomes 0 after normalisation: padding adds no signal.
    cv::Scalar mean(cfg.mean[0] * 255, cfg.mean[1] * 255, cfg.mean[2] * 255);
    cv::copyMakeBorder(s.image, s.image, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, mean);
    cv::copyMakeBorder(s.mask, s.mask, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, cv::Scalar(kIgnore));
    if (!s.saliency.empty()) cv::copyMakeBorder(s.saliency, s.saliency, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, cv::Scalar(0));
  }
  const int y0 = static_cast<int>(u(rng) * (s.image.rows - crop + 1));
  const int x0 = static_cast<int>(u(rng) * (s.image.cols - crop + 1));
  cv::Rect roi(std::min(x0, s.image.cols - crop), std::min(y0, s.image.rows - crop), crop, crop);
  s.image = s.image(roi).clone();
  s.mask = s.mask(roi).clone();
  if (!s.saliency.empty()) s.saliency = s.saliency(roi).clone();
  if (cfg.hflip && u(rng) < 0.5) {
    cv::flip(s.image, s.image, 1);
    cv::flip(s.mask, s.mask, 1);
    if (!s.saliency.empty()) cv::flip(s.saliency, s.saliency, 1);
  }
}

}  // namespace cseg::data
