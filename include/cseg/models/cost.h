#pragma once
/// Model cost: parameters and multiply-adds per forward pass, per module and in total.
///
/// Multiply-adds are counted while a forward runs (the convolutions and linear layers report what
/// they computed for the actual input), so data-dependent shapes, dilation, groups and skipped
/// branches are all accounted for without a separate shape model. Normalisation, activations,
/// pooling and interpolation are not counted (well under 1% of a segmenter's multiply-adds).
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace cseg::models {

class Segmenter;

/// While alive, collects the multiply-adds reported on this thread, keyed by module.
class CostProbe {
 public:
  CostProbe();
  ~CostProbe();
  CostProbe(const CostProbe&) = delete;
  CostProbe& operator=(const CostProbe&) = delete;
  void add(const torch::nn::Module* module, int64_t macs) { macs_[module] += macs; }
  const std::map<const torch::nn::Module*, int64_t>& macs() const { return macs_; }

 private:
  std::map<const torch::nn::Module*, int64_t> macs_;
  CostProbe* previous_;
};

struct ModuleCost {
  std::string name;    ///< module path ("backbone.layer1"); "" for the whole model
  int64_t params = 0;  ///< parameters (trainable or not) under this module
  int64_t macs = 0;    ///< multiply-adds per forward under this module
};

struct ModelCost {
  int64_t params = 0;
  int64_t trainable_params = 0;
  int64_t macs = 0;
  std::vector<ModuleCost> modules;  ///< modules up to `depth` levels, in registration order
};

/// Runs one inference forward of a [batch, 3, height, width] zero input on the model's device (no
/// autograd, eval mode; the training mode is restored) and sums parameters and multiply-adds per module path up to
/// `depth` levels deep (1 = top-level children).
ModelCost measure_cost(Segmenter& model, int64_t height, int64_t width, int64_t batch = 1, int depth = 1);

struct Latency {
  double median_ms = 0, p90_ms = 0, min_ms = 0;
  double images_per_second = 0;  ///< batch / median
};

/// Inference forward time of a [batch, 3, height, width] input on the model's device (a GPU is
/// synchronised around each run) in eval mode without autograd:
/// `warmup` untimed runs, then the median, 90th percentile and minimum of `runs` timed ones.
Latency measure_latency(Segmenter& model, int64_t height, int64_t width, int64_t batch = 1, int warmup = 3,
                        int runs = 10);

/// A trained model's cost as a run reports it: multiply-adds at the training crop (`crop` x
/// `crop`) and at a test image's size, and the inference latency there at batch 1 of a copy
/// readied as `cseg predict` runs it (batch norms folded: counted before that, so the counts are
/// the model's as trained). Measured on a CPU copy, whatever device `model` lives on.
struct TrainedModelCost {
  ModelCost train, test;
  Latency latency;
};
TrainedModelCost measure_trained_model(const Segmenter& model, int64_t crop, int64_t test_height, int64_t test_width);

}  // namespace cseg::models
