#include "cseg/scenarios/scenario.h"

#include "cseg/core/error.h"
#include "cseg/data/dataset.h"

namespace cseg::scenarios {

namespace {

/// The label protocols by name (several codebases share one: sdr is MiB's, continuum PLOP's).
const std::vector<std::pair<const char*, Protocol>>& protocol_table() {
  static const std::vector<std::pair<const char*, Protocol>> table{
      {"mib", Protocol::Mib},   {"sdr", Protocol::Mib},        {"mibv2", Protocol::MibV2},
      {"plop", Protocol::Plop}, {"continuum", Protocol::Plop}, {"cssegmentation", Protocol::CSSegmentation},
      {"ssul", Protocol::Ssul}};
  return table;
}

const std::vector<std::pair<const char*, Mode>>& mode_table() {
  static const std::vector<std::pair<const char*, Mode>> table{
      {"overlap", Mode::Overlap}, {"disjoint", Mode::Disjoint}, {"sequential", Mode::Sequential}};
  return table;
}

template <typename T>
std::vector<std::string> names_of(const std::vector<std::pair<const char*, T>>& table) {
  std::vector<std::string> names;
  for (const auto& [name, value] : table) names.push_back(name);
  return names;
}

}  // namespace

std::vector<std::string> mode_names() { return names_of(mode_table()); }
std::vector<std::string> protocol_names() { return names_of(protocol_table()); }

Mode parse_mode(const std::string& n) {
  for (const auto& [name, mode] : mode_table())
    if (n == name) return mode;
  fail("unknown scenario mode '{}'; known: {}", n, fmt::join(mode_names(), ", "));
}

Protocol parse_protocol(const std::string& n) {
  for (const auto& [name, protocol] : protocol_table())
    if (n == name) return protocol;
  fail("unknown label protocol '{}'; known: {}", n, fmt::join(protocol_names(), ", "));
}

std::string to_string(Mode m) {
  switch (m) {
    case Mode::Overlap: return "overlap";
    case Mode::Disjoint: return "disjoint";
    case Mode::Sequential: return "sequential";
  }
  return "?";
}

std::string to_string(Protocol p) {
  switch (p) {
    case Protocol::Mib: return "mib";
    case Protocol::MibV2: return "mibv2";
    case Protocol::Plop: return "plop";
    case Protocol::CSSegmentation: return "cssegmentation";
    case Protocol::Ssul: return "ssul";
  }
  return "?";
}

Scenario::Scenario(TaskSteps steps, Mode mode, Protocol protocol, int num_classes)
    : steps_(std::move(steps)), mode_(mode), protocol_(protocol), num_classes_(num_classes) {
  validate_steps(steps_, num_classes_, "scenario");
  position_.fill(-1);
  step_of_.fill(-1);
  // Background first, then each step's classes in the order given.
  order_.push_back(0);
  for (size_t k = 0; k < steps_.size(); ++k)
    for (int c : steps_[k]) {
      step_of_[c] = static_cast<int>(k);
      if (c != 0) order_.push_back(c);
    }
  for (size_t i = 0; i < order_.size(); ++i) position_[order_[i]] = static_cast<int>(i);
}

int Scenario::classes_after(int step) const {
  int n = 0;
  for (int k = 0; k <= step; ++k) n += static_cast<int>(steps_.at(k).size());
  return n;
}

int Scenario::first_label(int step) const { return step == 0 ? 0 : classes_after(step - 1); }

bool Scenario::is_seen(int d, int step) const { return step_of_[d] >= 0 && step_of_[d] <= step; }
bool Scenario::is_future(int d, int step) const { return step_of_[d] > step; }

std::vector<size_t> Scenario::train_images(int step, const std::vector<data::LabelSet>& index) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < index.size(); ++i) {
    const auto& present = index[i];
    bool has_current = false, has_future = false;
    for (int d = 1; d < 255; ++d) {
      if (!present[d]) continue;
      if (step_of_[d] == step) has_current = true;
      // A label outside the task counts as "future": it is not among the classes learnt so far.
      if (step_of_[d] > step || step_of_[d] < 0) has_future = true;
    }
    const bool keep = mode_ == Mode::Overlap ? has_current : (has_current && !has_future);
    if (keep) out.push_back(i);
  }
  CSEG_CHECK(!out.empty(), "scenario step {} (dataset classes {}) has no training images ({} mode)", step,
             fmt::join(steps_[step], ","), to_string(mode_));
  return out;
}

LabelMap Scenario::train_labels(int step) const {
  LabelMap m;
  m.fill(255);
  for (int d = 0; d < 255; ++d) {
    if (position_[d] < 0) continue;
    if (d == 0 || step_of_[d] == step)
      m[d] = static_cast<uint8_t>(position_[d]);
    else if (step_of_[d] < step)
      m[d] = mode_ == Mode::Sequential ? static_cast<uint8_t>(position_[d]) : 0;
    else
      m[d] = 0;  // future classes are background now: the background shift
  }
  m[255] = protocol_ == Protocol::Mib ? 0 : 255;
  return m;
}

std::vector<size_t> Scenario::cumulative_train_images(int step, const std::vector<data::LabelSet>& index) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < index.size(); ++i)
    for (int d = 1; d < 255; ++d)
      if (index[i][d] && is_seen(d, step)) {
        out.push_back(i);
        break;
      }
  CSEG_CHECK(!out.empty(), "scenario step {}: no training images with a seen class", step);
  return out;
}

LabelMap Scenario::cumulative_train_labels(int step) const {
  LabelMap m;
  m.fill(255);
  for (int d = 0; d < 255; ++d)
    if (position_[d] >= 0) m[d] = is_seen(d, step) ? static_cast<uint8_t>(position_[d]) : 0;
  return m;
}

std::vector<size_t> Scenario::eval_images(int step, const std::vector<data::LabelSet>& index) const {
  std::vector<size_t> out;
  const bool all = protocol_ == Protocol::MibV2 || protocol_ == Protocol::Ssul;
  const bool drop_future = protocol_ == Protocol::CSSegmentation && mode_ != Mode::Overlap;
  for (size_t i = 0; i < index.size(); ++i) {
    bool has_seen_fg = false, has_future = false;
    for (int d = 1; d < 255; ++d) {
      if (!index[i][d]) continue;
      if (is_seen(d, step)) has_seen_fg = true;
      if (is_future(d, step)) has_future = true;
    }
    if ((all || has_seen_fg) && !(drop_future && has_future)) out.push_back(i);
  }
  CSEG_CHECK(!out.empty(), "scenario step {}: no evaluation images under protocol {}", step, to_string(protocol_));
  return out;
}

LabelMap Scenario::eval_labels(int step) const {
  LabelMap m;
  m.fill(255);
  const bool future_is_bg = protocol_ == Protocol::Plop || protocol_ == Protocol::CSSegmentation;
  for (int d = 0; d < 255; ++d) {
    if (position_[d] < 0) continue;
    if (is_seen(d, step))
      m[d] = static_cast<uint8_t>(position_[d]);
    else
      m[d] = future_is_bg ? 0 : 255;
  }
  return m;
}

}  // namespace cseg::scenarios
