#pragma once
// Checks on one step's entry of results.json that hold for any model, however little it trained:
// the reported scores are the ones its confusion matrix gives, over pixels that were scored.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace cseg::test {

/// The step's test IoUs and mIoU, recomputed from its confusion matrix (rows: ground truth,
/// columns: prediction; a class's IoU is defined where it has ground-truth pixels), match the
/// reported ones; at least one pixel was scored and every IoU lies in [0, 1].
inline void expect_scores_follow_the_confusion_matrix(const nlohmann::json& step) {
  const auto& test = step.at("test");
  const auto& cm = test.at("confusion");
  const size_t n = cm.size();
  const int seen = step.at("num_classes").get<int>();
  ASSERT_GE(n, size_t(seen));
  std::vector<int64_t> gt(n, 0), pred(n, 0);
  int64_t total = 0;
  for (size_t t = 0; t < n; ++t)
    for (size_t p = 0; p < n; ++p) {
      const int64_t v = cm[t][p].get<int64_t>();
      gt[t] += v;
      pred[p] += v;
      total += v;
    }
  ASSERT_GT(total, 0) << "no test pixel was scored";
  double sum = 0;
  int count = 0;
  for (int c = 0; c < seen; ++c) {
    if (gt[c] == 0) {
      EXPECT_TRUE(test["per_class_iou"][c].is_null()) << "class " << c;
      continue;
    }
    const double iou = double(cm[c][c].get<int64_t>()) / double(gt[c] + pred[c] - cm[c][c].get<int64_t>());
    EXPECT_NEAR(test["per_class_iou"][c].get<double>(), iou, 1e-9) << "class " << c;
    sum += iou;
    ++count;
  }
  ASSERT_GT(count, 0);
  const double miou = test.at("miou").get<double>();
  EXPECT_NEAR(miou, sum / count, 1e-9);
  EXPECT_GE(miou, 0.0);
  EXPECT_LE(miou, 1.0);
}

}  // namespace cseg::test
