#include "cseg/weights/load.h"

#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "cseg/core/error.h"

namespace cseg::weights {

LoadMode parse_load_mode(const std::string& name) {
  if (name == "full") return LoadMode::full;
  if (name == "backbone") return LoadMode::backbone;
  if (name == "skip_classifier") return LoadMode::skip_classifier;
  fail("unknown weights mode '{}'; expected full, backbone or skip_classifier", name);
}

bool inplace_abn_scale_for(const std::string& norm_act) {
  if (norm_act == "iabn_sync" || norm_act == "iabn") return true;
  if (norm_act == "abn") return false;
  fail("unknown pretrained_norm_act '{}'; expected iabn_sync, iabn or abn", norm_act);
}

namespace {

constexpr double kInplaceAbnEps = 1e-5;  // in-place ABN's default eps, which the MiB codebases keep

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

std::string shape(const torch::Tensor& t) { return fmt::format("[{}]", fmt::join(t.sizes(), ", ")); }

/// The first few entries of a list, for a one-line error.
std::string first_few(const std::vector<std::string>& v, size_t n = 4) {
  std::vector<std::string> head(v.begin(), v.begin() + long(std::min(n, v.size())));
  return fmt::format("{}{}", fmt::join(head, ", "), v.size() > n ? fmt::format(", ... ({} more)", v.size() - n) : "");
}

/// In-place-ABN ResNet names (MiB/PLOP/SDR's ImageNet weights) -> torchvision names.
std::string rename_inplace_abn(const std::string& key) {
  static const std::regex stem(R"(^mod1\.(conv1|bn1)\.(.*)$)");
  static const std::regex block(R"(^mod(\d)\.block(\d+)\.(convs\.)?(conv\d|bn\d|proj_conv|proj_bn)\.(.*)$)");
  static const std::regex fc(R"(^classifier\.fc\.(.*)$)");
  std::smatch m;
  if (std::regex_match(key, m, stem)) return m[1].str() + "." + m[2].str();
  if (std::regex_match(key, m, block)) {
    std::string part = m[4].str();
    if (part == "proj_conv") part = "downsample.0";
    if (part == "proj_bn") part = "downsample.1";
    return fmt::format("layer{}.{}.{}.{}", std::stoi(m[1].str()) - 1, std::stoi(m[2].str()) - 1, part, m[5].str());
  }
  if (std::regex_match(key, m, fc)) return "fc." + m[1].str();
  return key;
}

/// A cseg checkpoint's (or any LibTorch OutputArchive's) model tensors, flattened.
void flatten_archive(torch::serialize::InputArchive& in, const std::string& prefix, NamedTensors& out) {
  for (const auto& key : in.keys()) {
    torch::Tensor t;
    if (in.try_read(key, t)) {
      out.emplace_back(prefix + key, t);
      continue;
    }
    torch::serialize::InputArchive child;
    if (in.try_read(key, child)) flatten_archive(child, prefix + key + ".", out);
  }
}

bool read_cseg_checkpoint(const std::string& path, NamedTensors& out) {
  torch::serialize::InputArchive in;
  try {
    in.load_from(path);
  } catch (const std::exception&) {
    return false;  // not a LibTorch archive: a torch.save file
  }
  torch::serialize::InputArchive model;
  torch::Tensor format;
  if (!in.try_read("format", format) || !in.try_read("model", model)) return false;
  flatten_archive(model, "", out);
  return true;
}

/// A whole MiB/PLOP/SDR DeepLabV3 (body.*, head.*, cls.<k>) -> cseg's DeepLab of layout mib. Its
/// per-step classifiers are joined, in step order, into one `cls.0` that the model's head alias
/// then splits over the model's own heads: a 15-1 model's six heads load into six heads, or
/// into the single 21-class head of a model built for prediction. Returns the file's head sizes.
std::vector<int64_t> rename_mib_model(NamedTensors& tensors) {
  static const std::regex head_param(R"(^cls\.(\d+)\.(weight|bias)$)");
  std::map<int, std::map<std::string, torch::Tensor>> heads;  // step -> weight/bias
  NamedTensors out;
  for (auto& [k, t] : tensors) {
    if (std::smatch m; std::regex_match(k, m, head_param)) {
      heads[std::stoi(m[1].str())][m[2].str()] = t;
    } else if (starts_with(k, "body.")) {
      out.emplace_back("backbone." + rename_inplace_abn(k.substr(5)), t);
    } else if (starts_with(k, "head.")) {
      out.emplace_back("classifier." + k.substr(5), t);
    } else {
      out.emplace_back(k, t);  // reported as unexpected
    }
  }
  std::vector<int64_t> sizes;
  for (const char* part : {"weight", "bias"}) {
    std::vector<torch::Tensor> rows;
    for (auto& [step, params] : heads)
      if (params.count(part)) rows.push_back(params[part]);
    if (rows.empty()) continue;
    if (std::string(part) == "weight")
      for (const auto& r : rows) sizes.push_back(r.dim() > 0 ? r.size(0) : 0);
    out.emplace_back(std::string("cls.0.") + part, rows.size() == 1 ? rows[0] : torch::cat(rows, 0));
  }
  tensors = std::move(out);
  return sizes;
}

}  // namespace

NamedTensors read_weights(const std::string& path, std::string* found_at) {
  NamedTensors out;
  if (read_cseg_checkpoint(path, out)) {
    if (found_at) *found_at = "cseg checkpoint";
    return out;
  }
  auto root = read_torch_file(path);
  return find_state_dict(*root, path, found_at);
}

std::string LoadReport::to_string() const {
  std::ostringstream s;
  s << fmt::format("{}: {} tensors loaded (state dict at {}), {} ignored by mode\n", file, loaded, found_at, ignored);
  for (const auto& n : notes) s << "  note: " << n << "\n";
  for (const auto& k : missing) s << "  missing (model has, file lacks): " << k << "\n";
  for (const auto& k : unexpected) s << "  unexpected (file has, model lacks): " << k << "\n";
  for (const auto& k : mismatched) s << "  shape mismatch: " << k << "\n";
  if (ok()) s << "  report empty: every tensor matched\n";
  return s.str();
}

LoadReport load_state_dict(models::Segmenter& model, NamedTensors tensors, const LoadOptions& options,
                           const std::string& file) {
  const LoadMode mode = options.mode;
  LoadReport r;
  r.file = file;
  // DataParallel / DDP checkpoints prefix every key with "module.".
  if (!tensors.empty() &&
      std::all_of(tensors.begin(), tensors.end(), [](const auto& kv) { return starts_with(kv.first, "module."); })) {
    for (auto& kv : tensors) kv.first = kv.first.substr(7);
    r.notes.push_back("stripped the 'module.' prefix (DataParallel checkpoint)");
  }

  // Model tensors by name, in registration order.
  std::vector<std::pair<std::string, torch::Tensor>> target;
  for (const auto& p : model.named_parameters(true)) target.emplace_back(p.key(), p.value());
  for (const auto& b : model.named_buffers(true)) target.emplace_back(b.key(), b.value());
  std::map<std::string, torch::Tensor> target_map(target.begin(), target.end());
  const auto backbone = model.backbone_prefixes();
  auto in_backbone = [&](const std::string& k) {
    return std::any_of(backbone.begin(), backbone.end(), [&](const std::string& p) { return starts_with(k, p); });
  };

  auto file_has = [&](const std::string& prefix) {
    return std::any_of(tensors.begin(), tensors.end(), [&](const auto& kv) { return starts_with(kv.first, prefix); });
  };
  const bool abn_model = file_has("body.mod1.conv1.");  // a whole MiB/PLOP/SDR DeepLabV3
  const bool abn_names = abn_model || file_has("mod1.conv1.");
  if (abn_model) {
    const auto file_heads = rename_mib_model(tensors);
    r.notes.push_back(
        fmt::format("renamed the MiB/PLOP/SDR DeepLabV3's keys (body.* -> backbone.* in torchvision's "
                    "names, head.* -> classifier.*) and joined its step classifiers cls.* [{}] into one",
                    fmt::join(file_heads, ", ")));
  }
  if (mode == LoadMode::backbone) {
    if (file_has("mod1.conv1.")) {
      for (auto& kv : tensors) kv.first = rename_inplace_abn(kv.first);
      r.notes.push_back("renamed in-place-ABN ResNet keys (mod*/block*/convs/proj_*) to torchvision's");
    }
    // A bare ImageNet ResNet (conv1.weight, layer1...) into a model whose backbone is "backbone.".
    if (backbone.size() == 1 && !target_map.count("conv1.weight") && target_map.count(backbone[0] + "conv1.weight") &&
        std::any_of(tensors.begin(), tensors.end(), [](const auto& kv) { return kv.first == "conv1.weight"; })) {
      for (auto& kv : tensors)  // the ImageNet classifier (fc) is not part of a segmentation backbone
        if (!starts_with(kv.first, backbone[0]) && !starts_with(kv.first, "fc.")) kv.first = backbone[0] + kv.first;
      r.notes.push_back(fmt::format("prefixed the ResNet keys with '{}'", backbone[0]));
    }
    // An ImageNet classifier that keeps its convolutional part in `features` (torchvision's
    // MobileNetV3): `features.*` is the segmentation backbone, the rest its classifier.
    if (backbone.size() == 1 && target_map.count(backbone[0] + "0.0.weight") &&
        std::any_of(tensors.begin(), tensors.end(), [](const auto& kv) { return kv.first == "features.0.0.weight"; })) {
      for (auto& kv : tensors)
        if (starts_with(kv.first, "features.")) kv.first = backbone[0] + kv.first.substr(9);
      r.notes.push_back(fmt::format("renamed the classifier's 'features.' keys to '{}'", backbone[0]));
    }
  }

  std::map<std::string, torch::Tensor> source;
  std::vector<std::string> source_order;
  for (auto& [k, t] : tensors) {
    if (!source.count(k)) source_order.push_back(k);
    source[k] = t;
  }

  // InPlaceABN(Sync) normalises with scale |w| + eps (so that its output can be inverted in the
  // backward pass) but stores w: a plain BatchNorm computes the same with |w| + eps stored.
  if (abn_names && options.inplace_abn_scale) {
    int scaled = 0;
    for (auto& [k, t] : source) {
      if (k.size() < 7 || k.compare(k.size() - 7, 7, ".weight") != 0) continue;
      if (!target_map.count(k.substr(0, k.size() - 7) + ".running_var") || !t.is_floating_point()) continue;
      t = t.abs() + kInplaceAbnEps;
      ++scaled;
    }
    if (scaled > 0)
      r.notes.push_back(
          fmt::format("in-place ABN norm scales: stored |w| + {} for {} norm weights "
                      "(model.pretrained_norm_act: abn for files trained with plain ABN)",
                      kInplaceAbnEps, scaled));
  }

  // The reference's single classifier conv -> per-step heads (rows split by head size).
  std::set<std::string> head_keys;  // model keys that belong to heads
  const auto sizes = model.head_sizes();
  auto take = [&](const std::string& key) {  // a file tensor, removed from what is left to match
    auto it = source.find(key);
    if (it == source.end()) return torch::Tensor();
    torch::Tensor t = it->second;
    source.erase(it);
    source_order.erase(std::find(source_order.begin(), source_order.end(), key));
    return t;
  };
  for (const auto& alias : model.head_aliases()) {
    for (const auto& [k, t] : target)
      if (starts_with(k, alias.heads + ".")) head_keys.insert(k);
    for (const char* suffix : {"weight", "bias"}) {
      const std::string ref = alias.reference + "." + suffix;
      torch::Tensor t = take(ref);
      if (!t.defined()) continue;
      if (mode == LoadMode::skip_classifier) {  // the reference's classifier, joined parts included
        ++r.ignored;
        for (const auto& other : alias.joined) r.ignored += take(other + "." + suffix).defined();
        continue;
      }
      bool complete = true;
      for (const auto& other : alias.joined) {
        const std::string key = other + "." + suffix;
        auto part = take(key);
        if (!part.defined()) {
          r.missing.push_back(fmt::format("{} (joined with {} into {}.*)", key, ref, alias.heads));
          complete = false;
        } else if (part.dim() != t.dim() || part.size(0) != t.size(0) ||
                   (t.dim() == 4 && part.sizes().slice(2) != t.sizes().slice(2))) {
          r.mismatched.push_back(fmt::format("{}: file {} cannot join {} {}", key, shape(part), ref, shape(t)));
          complete = false;
        } else {
          t = t.dim() == 1 ? t + part : torch::cat({t, part}, 1);
        }
      }
      if (!complete) continue;  // the heads are then reported missing too: nothing partial is loaded
      const int total = model.num_classes();
      if (t.dim() == 0 || t.size(0) != total) {
        r.mismatched.push_back(fmt::format("{} -> {}.*.{}: file {} vs model heads [{}] ({} classes)", ref, alias.heads,
                                           suffix, shape(t), fmt::join(sizes, ", "), total));
        continue;
      }
      int64_t row = 0;
      for (size_t h = 0; h < sizes.size(); ++h) {
        const std::string key = fmt::format("{}.{}.{}", alias.heads, h, suffix);
        source[key] = t.narrow(0, row, sizes[h]);
        source_order.push_back(key);
        row += sizes[h];
      }
      if (std::string(suffix) == "weight")
        r.notes.push_back(fmt::format("mapped {}{}{} onto {}.0..{}", alias.reference, alias.joined.empty() ? "" : " + ",
                                      fmt::join(alias.joined, " + "), alias.heads, sizes.size() - 1));
    }
  }

  auto in_scope = [&](const std::string& k) {
    if (mode == LoadMode::backbone) return in_backbone(k);
    if (mode == LoadMode::skip_classifier) return !head_keys.count(k);
    return true;
  };

  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;  // (model tensor, file tensor)
  for (const auto& [k, t] : target) {
    if (!in_scope(k)) continue;
    auto it = source.find(k);
    if (it == source.end()) {
      // BatchNorm's batch counter is absent from frozen-BN checkpoints and unused by cseg.
      if (!(k.size() >= 19 && k.compare(k.size() - 19, 19, "num_batches_tracked") == 0)) r.missing.push_back(k);
      continue;
    }
    if (it->second.sizes() != t.sizes()) {
      r.mismatched.push_back(fmt::format("{}: file {} vs model {}", k, shape(it->second), shape(t)));
      continue;
    }
    copies.emplace_back(t, it->second);
  }
  for (const auto& k : source_order) {
    const bool known = target_map.count(k) > 0;
    if (known && in_scope(k)) continue;  // copied, or reported as a shape mismatch
    // A name the model lacks is unexpected when it falls in the part this mode loads.
    const bool loaded_part = mode == LoadMode::backbone ? in_backbone(k) : !head_keys.count(k);
    if (!known && loaded_part)
      r.unexpected.push_back(k);
    else
      ++r.ignored;
  }

  std::string hint;
  if (abn_model && !r.ok() && !target_map.count("classifier.map_bn.weight")) {
    hint =
        "the file is a MiB/PLOP/SDR DeepLabV3: build it with model.name: deeplabv3, model.layout: mib, "
        "model.norm: bn_leaky";
    r.notes.push_back(hint);
  }
  if (options.strict && !r.ok()) {
    std::vector<std::string> parts;
    if (!r.missing.empty()) parts.push_back(fmt::format("{} missing ({})", r.missing.size(), first_few(r.missing)));
    if (!r.unexpected.empty())
      parts.push_back(fmt::format("{} unexpected ({})", r.unexpected.size(), first_few(r.unexpected)));
    if (!r.mismatched.empty())
      parts.push_back(fmt::format("{} with another shape ({})", r.mismatched.size(), first_few(r.mismatched, 2)));
    fail(
        "{}: the weights do not fit the model: {}; use `cseg weights check` for the full report, or load "
        "non-strictly / with mode backbone or skip_classifier{}",
        file, fmt::join(parts, "; "), hint.empty() ? "" : "; " + hint);
  }
  torch::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_(src);
  r.loaded = int(copies.size());
  return r;
}

LoadReport load_weights(models::Segmenter& model, const std::string& path, const LoadOptions& options) {
  std::string found_at;
  auto tensors = read_weights(path, &found_at);
  auto report = load_state_dict(model, std::move(tensors), options, path);
  report.found_at = found_at;
  return report;
}

}  // namespace cseg::weights
