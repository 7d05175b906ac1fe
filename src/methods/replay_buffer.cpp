#include "cseg/methods/replay_buffer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "cseg/core/error.h"
#include "cseg/core/runtime.h"

namespace cseg::methods {

const std::vector<std::string>& policy_names() {
  static const std::vector<std::string> names{"reservoir", "class_balanced", "experience_balanced",
                                              "importance_reservoir"};
  return names;
}

const std::vector<std::string>& selection_names() {
  static const std::vector<std::string> names{"random",     "herding", "cover", "uncertainty",
                                              "confidence", "margin",  "loss",  "accuracy"};
  return names;
}

bool selection_uses_priority(const std::string& s) {
  return s == "uncertainty" || s == "confidence" || s == "margin" || s == "loss" || s == "accuracy";
}

torch::Tensor bacs_importance(const torch::Tensor& logits, const torch::Tensor& labels) {
  namespace F = torch::nn::functional;
  auto weight = torch::ones({logits.size(1)}, logits.options());
  weight[0] = 0;
  auto ce = F::cross_entropy(logits, labels,
                             F::CrossEntropyFuncOptions().weight(weight).ignore_index(255).reduction(torch::kNone));
  return -ce.flatten(1).mean(1);
}

std::vector<double> replacement_probabilities(const std::vector<double>& importance,
                                              const std::vector<double>& balance) {
  const size_t n = importance.size();
  CSEG_CHECK(n > 0 && balance.size() == n, "replacement_probabilities: {} importances, {} balances", n, balance.size());
  double mean_imp = 0, mean_bal = 0;
  for (size_t i = 0; i < n; ++i) {
    mean_imp += std::abs(importance[i]) / double(n);
    mean_bal += std::abs(balance[i]) / double(n);
  }
  // Importance is put on the scale of the balance counts; with no loss anywhere it drops out
  // (the reference divides by zero there).
  const double scale = mean_imp * mean_bal;
  std::vector<double> s(n);
  for (size_t i = 0; i < n; ++i)
    s[i] = ReplayBuffer::kImportanceShare * (scale > 0 ? importance[i] / scale : 0.0) +
           (1 - ReplayBuffer::kImportanceShare) * balance[i];
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  const double min = *lo, range = *hi - *lo;
  if (range <= 0) return std::vector<double>(n, 1.0 / double(n));
  double sum = 0;
  for (auto& v : s) sum += (v = (v - min) / range);
  for (auto& v : s) v /= sum;
  return s;
}

ReplayBuffer::ReplayBuffer(Options o) : o_(std::move(o)) {
  CSEG_CHECK(o_.capacity >= 1, "replay memory must hold at least 1 image, got {}", o_.capacity);
  for (const auto& [v, allowed] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {o_.policy, policy_names()}, {o_.selection, selection_names()}})
    CSEG_CHECK(std::find(allowed.begin(), allowed.end(), v) != allowed.end(), "replay option '{}' is not one of {}", v,
               fmt::join(allowed, ", "));
}

std::vector<size_t> ReplayBuffer::order(const std::vector<ReplayItem>& group) const {
  std::vector<size_t> idx(group.size());
  std::iota(idx.begin(), idx.end(), 0);
  if (selection_uses_priority(o_.selection)) {
    std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return group[a].priority > group[b].priority; });
  } else if (o_.selection == "cover") {
    // Positions of the van der Corput sequence (0, 1/2, 1/4, 3/4, ...) of the offered order: any
    // prefix of the result is spread over the whole sequence.
    const size_t n = group.size();
    std::vector<bool> used(n, false);
    idx.clear();
    for (uint64_t t = 0; idx.size() < n && t < 64 * n + 64; ++t) {
      double v = 0, base = 0.5;
      for (uint64_t k = t; k; k >>= 1, base /= 2)
        if (k & 1) v += base;
      const auto i = std::min(n - 1, size_t(v * double(n)));
      if (!used[i]) {
        used[i] = true;
        idx.push_back(i);
      }
    }
    for (size_t i = 0; i < n; ++i)
      if (!used[i]) idx.push_back(i);
  } else if (o_.selection == "herding" && !group.empty() && group[0].embedding.defined()) {
    auto e = torch::stack([&] {
      std::vector<torch::Tensor> v;
      for (const auto& it : group)
        v.push_back(torch::nn::functional::normalize(it.embedding.to(torch::kFloat),
                                                     torch::nn::functional::NormalizeFuncOptions().dim(0)));
      return v;
    }());
    auto mean = e.mean(0);
    auto sum = torch::zeros_like(mean);
    std::vector<bool> used(group.size(), false);
    idx.clear();
    for (size_t t = 1; t <= group.size(); ++t) {
      // The crop that keeps the running mean of the chosen ones closest to the group's mean.
      auto dist = ((sum.unsqueeze(0) + e) / double(t) - mean.unsqueeze(0)).norm(2, 1);
      for (size_t i = 0; i < used.size(); ++i)
        if (used[i]) dist[long(i)] = std::numeric_limits<float>::infinity();
      const auto best = size_t(dist.argmin().item<int64_t>());
      used[best] = true;
      sum += e[long(best)];
      idx.push_back(best);
    }
  } else {
    std::mt19937_64 rng(core::mix_seed(o_.seed, 0x5E1, group.size()));
    std::shuffle(idx.begin(), idx.end(), rng);
  }
  return idx;
}

void ReplayBuffer::to_stored_form(ReplayItem& c) {
  // Kept in host memory whatever device trained: a buffer must not take the GPU's. A slice of a
  // batch already in the stored form is copied, or it would keep the whole batch alive.
  auto stored = [](const torch::Tensor& t, torch::ScalarType type) {
    auto out = t.to(torch::kCPU, type);
    return out.storage().nbytes() > size_t(out.nbytes()) ? out.clone() : out;
  };
  if (c.image.defined()) c.image = stored(c.image, torch::kHalf);
  for (auto& l : c.latents) l = stored(l, torch::kHalf);
  c.label = stored(c.label, torch::kUInt8);
  // float16 ends at 65504: logits beyond it (a model whose norm statistics are far off, say) stay
  // float32 rather than becoming inf targets for DER's distillation.
  if (c.logits.defined())
    c.logits = stored(c.logits, c.logits.abs().max().item<double>() > 65504 ? torch::kFloat : torch::kHalf);
  if (c.embedding.defined()) c.embedding = c.embedding.cpu();
}

void ReplayBuffer::add(std::vector<ReplayItem> candidates, int step, int first_label) {
  for (auto& c : candidates) {
    c.step = step;
    to_stored_form(c);
    if (o_.policy == "class_balanced") {
      // The class of this step with the most pixels; crops without one are not stored. Label 0
      // counts only in a crop that shows no other class of the step: it is background (step 0
      // of a class-incremental run, a room's background) or the most frequent class (Cityscapes'
      // road) and, counted like the others, would be every crop's group.
      auto counts = torch::bincount(c.label.flatten().to(torch::kLong), {}, 256);
      const int from = std::max(first_label, 1);
      auto step_counts = counts.narrow(0, from, 255 - from);
      if (step_counts.sum().item<int64_t>() > 0)
        c.group = from + int(step_counts.argmax().item<int64_t>());
      else
        c.group = first_label == 0 && counts[0].item<int64_t>() > 0 ? 0 : -1;
    } else {
      c.group = step;
    }
  }
  if (o_.policy == "importance_reservoir") {
    add_by_importance(std::move(candidates), step);
  } else if (o_.policy == "reservoir") {
    std::mt19937_64 rng(core::mix_seed(o_.seed, 0x7E5, uint64_t(step)));
    for (auto& c : candidates) {
      ++offered_;
      if (int(items_.size()) < o_.capacity) {
        items_.push_back(std::move(c));
      } else {
        std::uniform_int_distribution<int64_t> pick(0, offered_ - 1);
        const int64_t j = pick(rng);
        if (j < o_.capacity) items_[size_t(j)] = std::move(c);
      }
    }
  } else {
    // Group the old items (kept in priority order) and the new candidates (ordered by selection).
    std::map<int, std::vector<ReplayItem>> groups;
    for (auto& it : items_) groups[it.group].push_back(std::move(it));
    std::map<int, std::vector<ReplayItem>> fresh;
    for (auto& c : candidates)
      if (c.group >= 0) fresh[c.group].push_back(std::move(c));
    for (auto& [g, list] : fresh) {
      std::vector<ReplayItem> ordered;
      for (size_t i : order(list)) ordered.push_back(std::move(list[i]));
      auto& dst = groups[g];
      for (auto& it : ordered) dst.push_back(std::move(it));
    }
    // Equal quotas; capacity a group cannot use goes to the others, in group order.
    const size_t n = groups.size();
    std::map<int, size_t> quota;
    size_t left = size_t(o_.capacity);
    for (auto& [g, list] : groups) quota[g] = 0;
    bool progress = true;
    while (left > 0 && progress) {
      progress = false;
      for (auto& [g, list] : groups) {
        if (left == 0) break;
        if (quota[g] < list.size()) {
          ++quota[g];
          --left;
          progress = true;
        }
      }
    }
    (void)n;
    items_.clear();
    for (auto& [g, list] : groups)
      for (size_t i = 0; i < quota[g]; ++i) items_.push_back(std::move(list[i]));
  }
}

namespace {
/// The foreground classes (not 0, not 255) present in a stored label map.
std::vector<int> foreground_classes(const torch::Tensor& label) {
  auto counts = torch::bincount(label.flatten().to(torch::kLong), {}, 256);
  const auto* c = counts.data_ptr<int64_t>();
  std::vector<int> classes;
  for (int k = 1; k < 255; ++k)
    if (c[k] > 0) classes.push_back(k);
  return classes;
}
}  // namespace

void ReplayBuffer::add_by_importance(std::vector<ReplayItem> candidates, int step) {
  std::mt19937_64 rng(core::mix_seed(o_.seed, 0x1B5, uint64_t(step)));
  // Foreground classes of every stored crop, and how many stored crops hold each class.
  std::vector<std::vector<int>> classes;
  std::map<int, int> holding;
  for (const auto& it : items_) {
    classes.push_back(foreground_classes(it.label));
    for (int k : classes.back()) ++holding[k];
  }
  for (auto& c : candidates) {
    auto mine = foreground_classes(c.label);
    if (mine.empty()) continue;  // background only: nothing to replay (the reference fails on it)
    ++offered_;
    size_t slot = items_.size();
    if (items_.size() >= size_t(o_.capacity)) {
      std::uniform_int_distribution<int64_t> pick(0, offered_ - 1);
      if (pick(rng) >= o_.capacity) continue;
      std::vector<double> importance, balance;
      for (size_t i = 0; i < items_.size(); ++i) {
        importance.push_back(items_[i].importance);
        int rarest = std::numeric_limits<int>::max();
        for (int k : classes[i]) rarest = std::min(rarest, holding[k]);
        balance.push_back(double(rarest));
      }
      const auto p = replacement_probabilities(importance, balance);
      slot = size_t(std::discrete_distribution<size_t>(p.begin(), p.end())(rng));
      for (int k : classes[slot]) --holding[k];
    } else {
      items_.emplace_back();
      classes.emplace_back();
    }
    for (int k : mine) ++holding[k];
    classes[slot] = std::move(mine);
    items_[slot] = std::move(c);
  }
}

std::vector<size_t> ReplayBuffer::draw(size_t n, uint64_t seed, int only_step) const {
  std::vector<size_t> idx;
  for (size_t i = 0; i < items_.size(); ++i)
    if (only_step < 0 || items_[i].step == only_step) idx.push_back(i);
  std::mt19937_64 rng(seed);
  std::shuffle(idx.begin(), idx.end(), rng);
  if (n < idx.size()) idx.resize(n);
  return idx;
}

std::pair<torch::Tensor, torch::Tensor> ReplayBuffer::batch(const std::vector<size_t>& indices,
                                                            torch::Device device) const {
  std::vector<torch::Tensor> images, labels;
  for (size_t i : indices) {
    CSEG_CHECK(items_[i].image.defined(), "replay buffer: item {} holds a latent state, not an image", i);
    images.push_back(items_[i].image);
    labels.push_back(items_[i].label);
  }
  // Stacked in the stored types, so a GPU receives half the bytes, then widened there.
  return {torch::stack(images).to(device).to(torch::kFloat), torch::stack(labels).to(device).to(torch::kLong)};
}

std::pair<std::vector<torch::Tensor>, torch::Tensor> ReplayBuffer::latent_batch(const std::vector<size_t>& indices,
                                                                                torch::Device device) const {
  CSEG_CHECK(!indices.empty(), "replay buffer: an empty latent batch");
  const size_t parts = items_[indices[0]].latents.size();
  std::vector<std::vector<torch::Tensor>> by_part(parts);
  std::vector<torch::Tensor> labels;
  for (size_t i : indices) {
    CSEG_CHECK(items_[i].latents.size() == parts && parts > 0, "replay buffer: item {} holds no latent state", i);
    for (size_t k = 0; k < parts; ++k) by_part[k].push_back(items_[i].latents[k]);
    labels.push_back(items_[i].label);
  }
  std::vector<torch::Tensor> stacked;
  for (auto& p : by_part) stacked.push_back(torch::stack(p).to(device).to(torch::kFloat));
  return {stacked, torch::stack(labels).to(device).to(torch::kLong)};
}

int64_t ReplayBuffer::bytes() const {
  int64_t b = 0;
  for (const auto& it : items_) {
    if (it.image.defined()) b += it.image.numel() * it.image.element_size();
    for (const auto& l : it.latents) b += l.numel() * l.element_size();
    b += it.label.numel() * it.label.element_size();
    if (it.logits.defined()) b += it.logits.numel() * it.logits.element_size();
  }
  return b;
}

std::map<int, int> ReplayBuffer::per_step() const {
  std::map<int, int> m;
  for (const auto& it : items_) ++m[it.step];
  return m;
}

void ReplayBuffer::save(torch::serialize::OutputArchive& a) const {
  a.write("replay_size", torch::tensor(int64_t(items_.size())));
  a.write("replay_offered", torch::tensor(offered_));
  for (size_t i = 0; i < items_.size(); ++i) {
    const auto& it = items_[i];
    const auto p = "replay_" + std::to_string(i);
    if (it.image.defined()) a.write(p + "_image", it.image);
    for (size_t k = 0; k < it.latents.size(); ++k) a.write(p + "_latent" + std::to_string(k), it.latents[k]);
    a.write(p + "_label", it.label);
    a.write(p + "_meta", torch::tensor({int64_t(it.step), int64_t(it.group)}));
    a.write(p + "_importance", torch::tensor(it.importance, torch::kDouble));
    if (it.logits.defined()) a.write(p + "_logits", it.logits);
  }
}

void ReplayBuffer::load(torch::serialize::InputArchive& a) {
  items_.clear();
  torch::Tensor n, offered;
  if (!a.try_read("replay_size", n)) return;
  a.read("replay_offered", offered);
  offered_ = offered.item<int64_t>();
  for (int64_t i = 0; i < n.item<int64_t>(); ++i) {
    const auto p = "replay_" + std::to_string(i);
    ReplayItem it;
    torch::Tensor meta;
    torch::Tensor t;
    if (a.try_read(p + "_image", t)) it.image = t.cpu();  // host memory, as add() keeps it
    for (int k = 0;; ++k) {
      torch::Tensor latent;
      if (!a.try_read(p + "_latent" + std::to_string(k), latent)) break;
      it.latents.push_back(latent.cpu());
    }
    CSEG_CHECK(it.image.defined() || !it.latents.empty(),
               "replay buffer item {} in the checkpoint has neither an image nor a latent state", i);
    a.read(p + "_label", it.label);
    it.label = it.label.cpu();
    a.read(p + "_meta", meta);
    it.step = int(meta[0].item<int64_t>());
    it.group = int(meta[1].item<int64_t>());
    torch::Tensor importance;  // absent from checkpoints written before importance_reservoir
    if (a.try_read(p + "_importance", importance)) it.importance = importance.item<double>();
    torch::Tensor logits;
    if (a.try_read(p + "_logits", logits)) it.logits = logits.cpu();
    items_.push_back(std::move(it));
  }
}

}  // namespace cseg::methods
