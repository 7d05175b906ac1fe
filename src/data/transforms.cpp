#include "cseg/data/transforms.h"

#include <opencv2/imgproc.hpp>

namespace cseg::data {

void remap_labels(cv::Mat& mask, const std::array<uint8_t, 256>& lut) {
  cv::Mat table(1, 256, CV_8UC1, const_cast<uint8_t*>(lut.data()));
  cv::LUT(mask, table, mask);
}

namespace {
/// A map that moves with the image: how it is resized and what pads it.
struct Aligned {
  cv::Mat* map;
  int interpolation;
  cv::Scalar pad;
};
}  // namespace

void augment_train(Sample& s, const AugmentOptions& cfg, std::mt19937_64& rng) {
  // The mean colour becomes 0 after normalisation: padding adds no signal.
  const cv::Scalar mean(cfg.mean[0] * 255, cfg.mean[1] * 255, cfg.mean[2] * 255);
  std::vector<Aligned> maps{{&s.image, cv::INTER_LINEAR, mean},
                            {&s.mask, cv::INTER_NEAREST, cv::Scalar(kIgnore)},
                            {&s.saliency, cv::INTER_NEAREST, cv::Scalar(0)},
                            {&s.depth, cv::INTER_NEAREST, cv::Scalar(0)},  // no blending across a depth edge
                            {&s.next_image, cv::INTER_LINEAR, mean},
                            {&s.flow, cv::INTER_LINEAR, cv::Scalar(0, 0)},
                            {&s.flow_valid, cv::INTER_NEAREST, cv::Scalar(0)}};
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double scale = cfg.scale_min + u(rng) * (cfg.scale_max - cfg.scale_min);
  if (std::abs(scale - 1.0) > 1e-6) {
    const cv::Size before = s.image.size();
    cv::Size size(std::max(1, int(std::lround(before.width * scale))),
                  std::max(1, int(std::lround(before.height * scale))));
    for (auto& a : maps)
      if (!a.map->empty()) cv::resize(*a.map, *a.map, size, 0, 0, a.interpolation);
    if (!s.flow.empty())  // displacements in pixels grow with the image
      cv::multiply(s.flow, cv::Scalar(double(size.width) / before.width, double(size.height) / before.height), s.flow);
  }
  const int crop = cfg.crop_size;
  const int pad_h = std::max(0, crop - s.image.rows), pad_w = std::max(0, crop - s.image.cols);
  if (pad_h > 0 || pad_w > 0)
    for (auto& a : maps)
      if (!a.map->empty()) cv::copyMakeBorder(*a.map, *a.map, 0, pad_h, 0, pad_w, cv::BORDER_CONSTANT, a.pad);
  const int y0 = static_cast<int>(u(rng) * (s.image.rows - crop + 1));
  const int x0 = static_cast<int>(u(rng) * (s.image.cols - crop + 1));
  cv::Rect roi(std::min(x0, s.image.cols - crop), std::min(y0, s.image.rows - crop), crop, crop);
  for (auto& a : maps)
    if (!a.map->empty()) *a.map = (*a.map)(roi).clone();
  if (cfg.hflip && u(rng) < 0.5) {
    for (auto& a : maps)
      if (!a.map->empty()) cv::flip(*a.map, *a.map, 1);
    if (!s.flow.empty()) cv::multiply(s.flow, cv::Scalar(-1, 1), s.flow);  // a mirrored motion runs the other way
  }
}

}  // namespace cseg::data
