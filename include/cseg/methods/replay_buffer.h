#pragma once
/// The replay buffer every rehearsal method shares (image replay, DER/DER++, SSUL-M, BACS):
/// training crops of earlier steps with their labels (and, for DER, the model's low-resolution
/// logits at storage time), a fixed capacity in images, and its memory in bytes.
///
/// Storage policy (what share of the capacity each part of the past gets):
///   reservoir           : uniform over every crop offered so far (Vitter's algorithm R)
///   class_balanced      : equal share per foreground class; a crop counts for the class of its
///                         step with the most pixels in it
///   experience_balanced : equal share per step
///   importance_reservoir: BACS's filling: reservoir sampling (a crop with a foreground class is
///                         taken with probability capacity / crops offered so far), but the crop
///                         it replaces is drawn with probability growing with its replaceability
///                         s = 0.3 * importance / (mean |importance| * mean |balance|)
///                           + 0.7 * balance, min-max normalised over the buffer (the least
///                         replaceable crop is kept), where importance = -(the crop's mean
///                         cross-entropy at storage time, background pixels weighing 0: easy crops
///                         go first) and balance = how many stored crops hold the crop's rarest
///                         foreground class (crops of over-represented classes go first)
/// Selection (which crops fill a share, for the balanced policies):
///   random, herding (iCaRL: crops whose running mean embedding stays closest to the group's
///   mean), cover (spread evenly over the order the crops were offered in: a video's frames),
///   or by the model's prediction at storage time, the highest `priority` first (ASL's filling
///   strategies): uncertainty (mean entropy), confidence (1 - mean top softmax score), margin
///   (1 - mean gap between the top two scores), loss (mean cross-entropy against the stored
///   labels), accuracy (1 - pixel accuracy against them).
/// Images (or latent states) are kept as float16 (normalised), labels as uint8, logits as float16. The whole
/// content goes into the step checkpoint, so a resumed run replays the same crops.
#include <torch/torch.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace cseg::methods {

struct ReplayItem {
  torch::Tensor image;                 ///< [3, H, W]; undefined for latent replay
  std::vector<torch::Tensor> latents;  ///< latent replay: the model's state at a layer instead of the image
  torch::Tensor label;                 ///< [H, W] step labels at storage time (255 ignore)
  torch::Tensor logits;                ///< [C_then, h, w] or undefined
  torch::Tensor embedding;             ///< [D] for herding (not stored)
  double priority = 0;                 ///< the score the selection ranks by, higher kept first (not stored)
  double importance = 0;               ///< importance_reservoir: see bacs_importance() (stored)
  int step = 0;
  int group = 0;  ///< class (class_balanced) or step (experience_balanced)
};

/// Storage policies and selections the buffer knows; the selections scored from predictions say so.
const std::vector<std::string>& policy_names();
const std::vector<std::string>& selection_names();
bool selection_uses_priority(const std::string& selection);
/// BACS's importance of a crop (importance_reservoir): minus its cross-entropy averaged over all
/// its pixels, with background (label 0) and ignored (255) pixels counting 0. logits
/// [N, C, H, W], labels [N, H, W] -> [N].
torch::Tensor bacs_importance(const torch::Tensor& logits, const torch::Tensor& labels);
/// Which crop importance_reservoir replaces: index drawn with probability proportional to the
/// min-max normalised replaceability of each stored crop (see the policy's description);
/// uniform when every crop scores alike. Exposed for tests.
std::vector<double> replacement_probabilities(const std::vector<double>& importance,
                                              const std::vector<double>& balance);

class ReplayBuffer {
 public:
  struct Options {
    int capacity = 100;
    std::string policy = "class_balanced";  ///< reservoir | class_balanced | experience_balanced
    std::string selection = "random";       ///< see selection_names()
    uint64_t seed = 0;
  };
  explicit ReplayBuffer(Options o);
  /// The share of importance in importance_reservoir's replaceability (balance gets the rest).
  static constexpr double kImportanceShare = 0.3;

  /// Offers the crops of step `step` (their `group` is set here from the policy);
  /// `first_label` = first step label introduced at `step` (for the class of a crop).
  void add(std::vector<ReplayItem> candidates, int step, int first_label);
  /// An item as the buffer keeps it: in host memory, images, latents and logits as float16,
  /// labels as uint8 (copies). add() does it; a caller gathering a whole step's candidates does it
  /// per crop, so the candidates take a quarter of the memory of float32 crops and int64 labels.
  static void to_stored_form(ReplayItem& item);

  const Options& options() const { return o_; }
  size_t size() const { return items_.size(); }
  const ReplayItem& operator[](size_t i) const { return items_[i]; }
  /// `n` distinct items (all if n >= size), drawn with a generator seeded by `seed`; only items
  /// stored at step `only_step` when it is >= 0.
  std::vector<size_t> draw(size_t n, uint64_t seed, int only_step = -1) const;
  /// Stacked images [n, 3, H, W] (float32) and labels [n, H, W] (int64) of `indices`, on
  /// `device` (the items themselves stay in host memory).
  std::pair<torch::Tensor, torch::Tensor> batch(const std::vector<size_t>& indices,
                                                torch::Device device = torch::kCPU) const;
  /// Latent replay: the stored states (one stacked float32 tensor per latent) and labels.
  std::pair<std::vector<torch::Tensor>, torch::Tensor> latent_batch(const std::vector<size_t>& indices,
                                                                    torch::Device device = torch::kCPU) const;
  int64_t bytes() const;
  /// Items per step, for logging and tests.
  std::map<int, int> per_step() const;

  void save(torch::serialize::OutputArchive& a) const;
  void load(torch::serialize::InputArchive& a);

 private:
  std::vector<size_t> order(const std::vector<ReplayItem>& group) const;
  void add_by_importance(std::vector<ReplayItem> candidates, int step);
  Options o_;
  std::vector<ReplayItem> items_;
  int64_t offered_ = 0;  ///< reservoir: crops offered so far
};

}  // namespace cseg::methods
