#pragma once
/// Optical flow between consecutive frames (OpenCV's DIS) and warping by it: the temporal cues a
/// robot's video gives for free. Convention everywhere: flow(p) = where the surface seen at p in
/// frame t is in frame t+1, minus p, in pixels (dx, dy); H x W CV_32FC2.
#include <opencv2/core.hpp>
#include <string>

namespace cseg::data {
struct Sample;
}

namespace cseg::adaptation {

/// DIS presets: ultrafast, fast, medium (OpenCV's names; medium is the most accurate).
/// Flow from `from` to `to` (both H x W x 3 RGB or H x W gray, uint8, same size).
cv::Mat estimate_flow(const cv::Mat& from, const cv::Mat& to, const std::string& preset = "medium");

/// Backward warp: out(p) = next(p + flow(p)), so a map of frame t+1 is brought to frame t's pixels
/// with frame t's forward flow. `nearest` for label maps (no blending of class ids), bilinear
/// otherwise. Pixels whose target falls outside the frame get `fill`.
cv::Mat warp_by_flow(const cv::Mat& next, const cv::Mat& flow, bool nearest, const cv::Scalar& fill = cv::Scalar(0));

/// Pixels where the flow is trustworthy: forward and backward flow cancel to within
/// `tolerance` pixels (forward(p) + backward(p + forward(p)) ~ 0) and the target is in the
/// frame. Occluded and uncovered pixels fail it. H x W CV_8UC1, 255 = consistent.
cv::Mat consistent_flow_mask(const cv::Mat& forward, const cv::Mat& backward, double tolerance = 1.0);

/// Mean end-point error |estimated - truth| over the pixels where `mask` (CV_8UC1) is non-zero
/// (all pixels when it is empty).
double end_point_error(const cv::Mat& estimated, const cv::Mat& truth, const cv::Mat& mask = cv::Mat());

/// For the loader (LoaderOptions::prepare): the flow from the sample's frame to its next frame
/// (`preset`) and where forward and backward flow agree. A frame without a next frame gets
/// itself as next, a zero flow and no valid pixel.
void add_flow_to_next(data::Sample& sample, const std::string& preset = "medium");

}  // namespace cseg::adaptation
