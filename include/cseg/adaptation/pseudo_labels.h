#pragma once
/// Learning an environment without labels from a teacher (the model as the previous step ended):
/// pseudo-labels for the training batch, hard or soft.
#include <torch/types.h>

#include <vector>

namespace cseg::adaptation {

/// Per pixel, the teacher's most likely class where its softmax score is at least `threshold`,
/// else 255 (ignored by the losses). logits [N, C, H, W] -> labels [N, H, W] int64.
/// `class_fraction` > 0 balances the classes (as CBST does): of the pixels predicted as each
/// class, the most confident `class_fraction` of them are kept whatever the threshold, so a class
/// the teacher is unsure about everywhere is not dropped (and then forgotten) altogether.
torch::Tensor hard_pseudo_labels(const torch::Tensor& teacher_logits, double threshold, double class_fraction = 0);

/// Cross-entropy of the student's softmax against the teacher's softmax at `temperature`,
/// averaged over pixels (the soft-label variant; gradients reach the student only).
torch::Tensor soft_pseudo_label_loss(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                                     double temperature);

/// A photometrically perturbed copy of normalised images [N, 3, H, W] (normalised with `mean`,
/// `std`): per image, brightness, contrast and per-channel gains drawn uniformly in
/// [1 - strength, 1 + strength], then Gaussian noise of 0.05 * strength (in [0, 1] pixel units).
/// The student sees this while the teacher labelled the clean image (cross-consistency).
torch::Tensor photometric_jitter(const torch::Tensor& images, double strength, const std::vector<double>& mean,
                                 const std::vector<double>& std);

/// Share of pixels a hard pseudo-label keeps (for logs): labels != 255.
double labelled_fraction(const torch::Tensor& labels);

}  // namespace cseg::adaptation
