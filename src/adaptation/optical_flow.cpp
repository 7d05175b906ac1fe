#include "cseg/adaptation/optical_flow.h"

#include <opencv2/imgproc.hpp>
#include <opencv2/video/tracking.hpp>

#include "cseg/core/error.h"
#include "cseg/data/dataset.h"

namespace cseg::adaptation {

namespace {
cv::Mat to_gray(const cv::Mat& image, const char* which) {
  CSEG_CHECK(image.depth() == CV_8U && (image.channels() == 1 || image.channels() == 3),
             "optical flow: the {} frame must be 8-bit gray or RGB (got {} channels, depth {})", which,
             image.channels(), image.depth());
  if (image.channels() == 1) return image;
  cv::Mat gray;
  cv::cvtColor(image, gray, cv::COLOR_RGB2GRAY);
  return gray;
}
}  // namespace

cv::Mat estimate_flow(const cv::Mat& from, const cv::Mat& to, const std::string& preset) {
  CSEG_CHECK(from.size() == to.size(), "optical flow: frames differ in size ({}x{} and {}x{})", from.cols, from.rows,
             to.cols, to.rows);
  int p;
  if (preset == "ultrafast")
    p = cv::DISOpticalFlow::PRESET_ULTRAFAST;
  else if (preset == "fast")
    p = cv::DISOpticalFlow::PRESET_FAST;
  else if (preset == "medium")
    p = cv::DISOpticalFlow::PRESET_MEDIUM;
  else
    fail("optical flow preset '{}' is unknown (ultrafast, fast, medium)", preset);
  auto dis = cv::DISOpticalFlow::create(p);
  cv::Mat flow;
  dis->calc(to_gray(from, "first"), to_gray(to, "second"), flow);
  return flow;
}

namespace {
/// Absolute sampling positions p + flow(p) for cv::remap.
cv::Mat sampling_map(const cv::Mat& flow) {
  CSEG_CHECK(flow.type() == CV_32FC2, "a flow field must be 2-channel float (H x W x 2)");
  cv::Mat map(flow.size(), CV_32FC2);
  for (int y = 0; y < flow.rows; ++y) {
    const auto* f = flow.ptr<cv::Vec2f>(y);
    auto* m = map.ptr<cv::Vec2f>(y);
    for (int x = 0; x < flow.cols; ++x) m[x] = cv::Vec2f(x + f[x][0], y + f[x][1]);
  }
  return map;
}
}  // namespace

cv::Mat warp_by_flow(const cv::Mat& next, const cv::Mat& flow, bool nearest, const cv::Scalar& fill) {
  CSEG_CHECK(next.size() == flow.size(), "warp_by_flow: the map is {}x{}, the flow {}x{}", next.cols, next.rows,
             flow.cols, flow.rows);
  cv::Mat out;
  cv::remap(next, out, sampling_map(flow), cv::noArray(), nearest ? cv::INTER_NEAREST : cv::INTER_LINEAR,
            cv::BORDER_CONSTANT, fill);
  return out;
}

cv::Mat consistent_flow_mask(const cv::Mat& forward, const cv::Mat& backward, double tolerance) {
  CSEG_CHECK(forward.size() == backward.size() && forward.type() == CV_32FC2 && backward.type() == CV_32FC2,
             "consistent_flow_mask: forward and backward flow must be H x W x 2 floats of one size");
  // The backward flow, read at where each pixel goes; outside the frame it cannot be checked.
  const cv::Scalar far(1e6, 1e6);
  cv::Mat back_at_target = warp_by_flow(backward, forward, false, far);
  cv::Mat mask(forward.size(), CV_8UC1);
  const double tol2 = tolerance * tolerance;
  for (int y = 0; y < forward.rows; ++y)
    for (int x = 0; x < forward.cols; ++x) {
      const auto f = forward.at<cv::Vec2f>(y, x), b = back_at_target.at<cv::Vec2f>(y, x);
      const double dx = f[0] + b[0], dy = f[1] + b[1];
      mask.at<uint8_t>(y, x) = dx * dx + dy * dy <= tol2 ? 255 : 0;
    }
  return mask;
}

double end_point_error(const cv::Mat& estimated, const cv::Mat& truth, const cv::Mat& mask) {
  CSEG_CHECK(estimated.size() == truth.size() && estimated.type() == CV_32FC2 && truth.type() == CV_32FC2,
             "end_point_error: both flows must be H x W x 2 floats of one size");
  double sum = 0;
  size_t n = 0;
  for (int y = 0; y < truth.rows; ++y)
    for (int x = 0; x < truth.cols; ++x) {
      if (!mask.empty() && mask.at<uint8_t>(y, x) == 0) continue;
      const auto d = estimated.at<cv::Vec2f>(y, x) - truth.at<cv::Vec2f>(y, x);
      sum += std::sqrt(double(d[0]) * d[0] + double(d[1]) * d[1]);
      ++n;
    }
  CSEG_CHECK(n > 0, "end_point_error: the mask selects no pixel");
  return sum / static_cast<double>(n);
}

void add_flow_to_next(data::Sample& s, const std::string& preset) {
  if (s.next_image.empty()) {
    s.next_image = s.image.clone();
    s.flow = cv::Mat(s.image.size(), CV_32FC2, cv::Scalar(0, 0));
    s.flow_valid = cv::Mat(s.image.size(), CV_8UC1, cv::Scalar(0));
    return;
  }
  s.flow = estimate_flow(s.image, s.next_image, preset);
  s.flow_valid = consistent_flow_mask(s.flow, estimate_flow(s.next_image, s.image, preset));
}

}  // namespace cseg::adaptation
