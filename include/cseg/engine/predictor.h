#pragma once
/// Prediction on image files: a label PNG in the dataset's palette, a colour overlay, and
/// optionally the per-pixel probabilities or logits as .npy, for one image or a folder tree
/// (the output keeps the input's sub-folders). Also uncertainty.csv: per image, in file-name order
/// (a video's frame order), the mean normalised entropy and whether a new environment starts
/// there (adaptation/novelty.h).
#include <string>
#include <vector>

#include "cseg/adaptation/novelty.h"
#include "cseg/data/image_io.h"
#include "cseg/models/segmenter.h"

namespace cseg::engine {

struct PredictOptions {
  std::string input;         ///< an image file or a folder (searched recursively)
  std::string out;           ///< output folder
  int batch_size = 4;        ///< images of the same size are batched together
  bool save_probs = false;   ///< <name>_probs.npy: float32 [C, H, W] softmax
  bool save_logits = false;  ///< <name>_logits.npy: float32 [C, H, W]
  double alpha = 0.5;        ///< overlay opacity of the class colours
  std::vector<double> mean{0.485, 0.456, 0.406}, std{0.229, 0.224, 0.225};
  data::Palette palette = data::voc_palette();
  /// Model channel -> dataset label for the written label maps (a scenario's class order puts
  /// step labels in another order); empty = identity. The .npy files keep the model's channels.
  std::vector<int> dataset_labels;
  int log_every = 50;
  adaptation::ChangeDetectorOptions detector;  ///< uncertainty.csv's new-environment flags (adaptation.detector)
};

/// The image files under `input` (jpg, jpeg, png, bmp, any case), sorted; `input` itself if it is
/// a file. Throws naming the path when it does not exist or holds no image.
std::vector<std::string> find_images(const std::string& input, const std::string& skip_dir = "");

/// Predicts every image and writes the outputs; returns the number of images.
size_t predict(models::Segmenter& model, const PredictOptions& options);

/// Writes a float32 tensor as a NumPy .npy file (C order), atomically.
void write_npy(const std::string& path, const torch::Tensor& t);

}  // namespace cseg::engine
