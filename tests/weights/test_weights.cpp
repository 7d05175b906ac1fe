// Weight import: the torch.save reader (zip and legacy), the load report, and parity with
// torchvision's ResNet and DeepLabV3 and with the MiB/PLOP/SDR codebases' DeepLabV3 on fixtures
// made by tools/make_weight_fixtures.py.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "cseg/core/error.h"
#include "cseg/models/deeplab.h"
#include "cseg/models/fast_scnn.h"
#include "cseg/models/resnet.h"
#include "cseg/models/unet.h"
#include "cseg/weights/load.h"
#include "fixtures.h"
#include "weight_fixtures.h"

using namespace cseg;
using namespace cseg::models;
using weights::LoadMode;
using namespace std::string_literals;
using test::fixture;
using test::max_abs_diff;
using test::Parity;
using test::read_parity;
using test::synth;

namespace {

/// A MiB checkpoint's stored values (tools/make_weight_fixtures.py, `mib_stored`): synth, with every
/// other norm scale negated, since in-place ABN stores w and computes with |w| + eps.
torch::Tensor mib_stored(const std::string& name, c10::IntArrayRef shape) {
  auto v = synth(name, shape);
  static const std::regex norm_scale(R"(bn\d*\.weight$)");
  if (std::regex_search(name, norm_scale)) {
    auto even = v.slice(0, 0, v.size(0), 2);
    even.neg_();
  }
  return v;
}

/// A MiB-layout parity fixture: its checkpoint keys (`module.body...`, as MiB's DDP model saves
/// them, under "model_state") with the stored values.
Parity read_mib_parity(const std::string& name) {
  auto root = weights::read_torch_file(fixture("parity_" + name + ".pt"));
  Parity p;
  p.input = root->get("input")->tensor;
  p.output = root->get("output")->tensor;
  std::string found_at;
  for (auto& [k, t] : weights::find_state_dict(*root->get("state"), name, &found_at)) {
    EXPECT_EQ(k.rfind("module.", 0), 0u) << k;
    p.state.emplace_back(k, mib_stored(k.substr(7), t.sizes()));
  }
  EXPECT_EQ(found_at, "key 'model_state'");
  return p;
}

void write_bytes(const std::filesystem::path& file, const std::string& bytes) {
  std::ofstream(file, std::ios::binary) << bytes;
}

}  // namespace

TEST(TorchFile, ZipAndLegacyFormatsReadTheSameValues) {
  for (const char* file : {"mixed_zip.pt", "mixed_legacy.pt"}) {
    SCOPED_TRACE(file);
    auto root = weights::read_torch_file(fixture(file));
    EXPECT_EQ(root->get("epoch")->i, 3);
    EXPECT_DOUBLE_EQ(root->get("lr")->f, 0.01);
    EXPECT_EQ(root->get("name")->s, "mixed");
    EXPECT_TRUE(root->get("flag")->b);
    EXPECT_EQ(root->get("none")->kind, weights::PyValue::Kind::None);
    EXPECT_EQ(root->get("tuple")->items.size(), 3u);
    EXPECT_EQ(root->get("big")->kind, weights::PyValue::Kind::BigInt);
    std::string where;
    auto sd = weights::find_state_dict(*root, file, &where);
    EXPECT_EQ(where, "key 'state_dict'");
    std::map<std::string, torch::Tensor> t(sd.begin(), sd.end());
    ASSERT_EQ(sd.size(), 7u);  // param, view, same_storage, half, long, nested.a, nested.b
    EXPECT_TRUE(torch::equal(t["param"], torch::arange(6, torch::kFloat).reshape({2, 3})));
    EXPECT_TRUE(torch::equal(t["view"], torch::tensor({2.0, 4.0, 6.0}, torch::kDouble)));
    EXPECT_TRUE(torch::equal(t["same_storage"], torch::arange(10, torch::kDouble)));
    EXPECT_EQ(t["half"].scalar_type(), torch::kHalf);
    EXPECT_FLOAT_EQ(t["half"][0].item<float>(), 1.5f);
    EXPECT_TRUE(torch::equal(t["long"], torch::tensor({int64_t(7), int64_t(-9)})));
    EXPECT_TRUE(torch::equal(t["nested.a"], torch::ones({2, 2})));
  }
}

TEST(TorchFile, BadFilesGiveClearErrors) {
  test::TempDir d;
  test::expect_error([&] { weights::read_torch_file((d / "none.pt").string()); }, {"cannot open"});
  write_bytes(d / "text.pt", "hello, not a checkpoint");
  test::expect_error([&] { weights::read_torch_file((d / "text.pt").string()); }, {"not a torch.save file"});
  // A truncated legacy file.
  std::ifstream in(fixture("mixed_legacy.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_bytes(d / "cut.pt", bytes.substr(0, bytes.size() / 2));
  test::expect_error([&] { weights::read_torch_file((d / "cut.pt").string()); }, {"cut.pt"});
  // A storage claiming 2^40 elements (4 TB of float32) in a file of a few hundred bytes: a clear
  // error before any allocation. The fixture's one storage id ends ('cpu', 6): its element count,
  // pickled as BININT1 6, becomes LONG1 2^40.
  const std::string claim("cpuq\x14K\x06", 7);
  const auto at = bytes.find(claim);
  ASSERT_NE(at, std::string::npos);
  std::string huge = bytes;
  huge.replace(at, claim.size(), std::string("cpuq\x14\x8a\x06\x00\x00\x00\x00\x00\x01", 13));
  write_bytes(d / "huge.pt", huge);
  test::expect_error([&] { weights::read_torch_file((d / "huge.pt").string()); },
                     {"huge.pt", "claims 1099511627776 elements"});
}

namespace {
/// A legacy torch.save file around `root_pickle` (one pickle, protocol 2): the magic number, the
/// protocol version, the system info and an empty storage-key list.
std::string legacy_file(const std::string& root_pickle) {
  const std::string magic = "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."s;
  const std::string protocol = "\x80\x02M\xe9\x03."s, sys_info = "\x80\x02}."s, keys = "\x80\x02]."s;
  return magic + protocol + sys_info + root_pickle + keys;
}
}  // namespace

// The pickle memo lets a crafted file build a dict that holds itself, or lists nested without
// end; every walk of the result (and its destructor) would then recurse until the stack
// overflows. Both are refused when the pickle ends; a merely shared value is fine.
TEST(TorchFile, CyclicOrEndlesslyNestedPicklesAreErrors) {
  test::TempDir d;
  // {} memo0 'a' get0 SETITEM: d['a'] = d.
  write_bytes(d / "cycle.pt", legacy_file("\x80\x02}q\x00X\x01\x00\x00\x00"
                                          "a"
                                          "h\x00s."s));
  test::expect_error([&] { weights::read_torch_file((d / "cycle.pt").string()); }, {"cycle.pt", "holds itself"});
  // 1000 empty lists, each appended to the one below it: 1000 levels.
  write_bytes(d / "deep.pt", legacy_file("\x80\x02" + std::string(1000, ']') + std::string(999, 'a') + "."));
  test::expect_error([&] { weights::read_torch_file((d / "deep.pt").string()); },
                     {"deep.pt", "nest more than 100 levels"});
  // One list referenced twice (memo) is a DAG, not a cycle: {'a': l, 'b': l}.
  write_bytes(d / "shared.pt", legacy_file("\x80\x02}X\x01\x00\x00\x00"
                                           "a"
                                           "]q\x00"
                                           "s"
                                           "X\x01\x00\x00\x00"
                                           "b"
                                           "h\x00"
                                           "s."s));
  auto root = weights::read_torch_file((d / "shared.pt").string());
  EXPECT_EQ(root->get("a"), root->get("b"));
}

// LibTorch's zip reader allocates an entry's claimed uncompressed size before reading it: an
// entry claiming 4 GB in a small file is refused by name first.
TEST(TorchFile, ZipEntryClaimingMoreThanTheFileIsAnError) {
  test::TempDir d;
  std::ifstream in(fixture("mixed_zip.pt"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const auto entry = bytes.find("PK\x01\x02");  // the central directory's first entry
  ASSERT_NE(entry, std::string::npos);
  for (int k = 0; k < 4; ++k) bytes[entry + 24 + k] = char(k == 3 ? 0xf0 : 0x00);  // 0xf0000000 bytes
  write_bytes(d / "bomb.pt", bytes);
  test::expect_error([&] { weights::read_torch_file((d / "bomb.pt").string()); },
                     {"bomb.pt", "claims 4026531840 bytes"});
}

// A fuzzer input (tests/files/fuzz/): SDR's reference file with a storage of 0 elements that a
// tensor reaches into. Copying the empty storage passed LibTorch's null data pointer to memcpy
// (undefined behaviour, reported by UBSan in the fuzzer); now the tensor's bounds are the error.
TEST(TorchFile, EmptyStorageIsReadAndATensorBeyondItIsAnError) {
  const std::string file = std::string(CSEG_SOURCE_DIR) + "/tests/files/fuzz/torch_empty_storage.pt";
  test::expect_error([&] { weights::read_torch_file(file); },
                     {"torch_empty_storage.pt", "reaches element 0 of a storage of 0"});
}

TEST(Parity, ResNetMatchesTorchvisionKeyForKey) {
  for (int depth : {50, 101}) {
    SCOPED_TRACE(depth);
    auto p = read_parity("resnet" + std::to_string(depth));
    ResNet net(ResNetOptions{depth, {}, Norm::bn, 1000});
    // Exactly torchvision's keys: every model tensor in the file and every file tensor in the model.
    std::map<std::string, torch::Tensor> file(p.state.begin(), p.state.end());
    size_t model_keys = 0;
    torch::NoGradGuard no_grad;
    for (auto& kv : net->named_parameters()) {
      ASSERT_TRUE(file.count(kv.key())) << kv.key();
      kv.value().copy_(file[kv.key()]);
      ++model_keys;
    }
    for (auto& kv : net->named_buffers()) {
      ASSERT_TRUE(file.count(kv.key())) << kv.key();
      kv.value().copy_(file[kv.key()]);
      ++model_keys;
    }
    EXPECT_EQ(model_keys, file.size());
    net->eval();
    const double diff = max_abs_diff(net->forward(p.input), p.output);
    std::printf("parity resnet%d: max |cseg - torchvision| = %.3g (output max %.3g)\n", depth, diff,
                p.output.abs().max().item<double>());
    EXPECT_LT(diff, 1e-4);
  }
}

TEST(Parity, DeepLabV3MatchesTorchvisionThroughTheImporter) {
  for (int depth : {50, 101}) {
    SCOPED_TRACE(depth);
    auto p = read_parity("deeplabv3_resnet" + std::to_string(depth));
    // torchvision's layout: output stride 8, rates 12/24/36, 5 classes, aux head on.
    DeepLab m(DeepLabOptions{{5}, depth, 8, {}, Norm::bn, false, true});
    auto report = weights::load_state_dict(m, p.state, {LoadMode::full, true}, "parity");
    EXPECT_TRUE(report.ok()) << report.to_string();
    m.eval();
    torch::NoGradGuard no_grad;
    const double diff = max_abs_diff(m.forward(p.input).logits, p.output);
    std::printf("parity deeplabv3_resnet%d: max |cseg - torchvision| = %.3g (output max %.3g)\n", depth, diff,
                p.output.abs().max().item<double>());
    EXPECT_LT(diff, 1e-4);
    if (depth == 50) {
      // The reference's single classifier conv splits over per-step heads: same logits.
      DeepLab split(DeepLabOptions{{3, 2}, depth, 8, {}, Norm::bn, false, true});
      EXPECT_TRUE(weights::load_state_dict(split, p.state, {LoadMode::full, true}, "parity").ok());
      split.eval();
      EXPECT_LT(max_abs_diff(split.forward(p.input).logits, p.output), 1e-4);
    }
  }
}

// The MiB/PLOP/SDR codebases' DeepLabV3 (written in Python from its description, with in-place
// ABN's arithmetic) against cseg's layout mib, loaded from MiB's checkpoint names.
TEST(Parity, MibDeepLabV3MatchesThroughTheImporter) {
  torch::NoGradGuard no_grad;
  {
    // Stride 16, heads [3, 2] (cls.0, cls.1), the image pooling in 2-cell windows at evaluation.
    auto p = read_mib_parity("mib_deeplabv3_resnet50_os16");
    auto build = [](int eval_pooling) {
      DeepLabOptions o{{3, 2}, 50, 16, {}, Norm::bn_leaky, false, false};
      o.layout = DeepLabLayout::mib;
      o.eval_pooling = eval_pooling;
      auto m = std::make_shared<DeepLab>(o);
      m->eval();
      return m;
    };
    auto m = build(2);
    auto report = weights::load_state_dict(*m, p.state, {LoadMode::full, true}, "mib");
    EXPECT_TRUE(report.ok()) << report.to_string();
    const auto text = report.to_string();
    EXPECT_NE(text.find("renamed the MiB/PLOP/SDR DeepLabV3's keys"), std::string::npos) << text;
    EXPECT_NE(text.find("joined its step classifiers cls.* [3, 2] into one"), std::string::npos) << text;
    EXPECT_NE(text.find("stored |w| + 1e-05 for 56 norm weights"), std::string::npos) << text;
    const double diff = max_abs_diff(m->forward(p.input).logits, p.output);
    std::printf("parity mib deeplabv3_resnet50 os16: max |cseg - reference| = %.3g (output max %.3g)\n", diff,
                p.output.abs().max().item<double>());
    EXPECT_LT(diff, 1e-4);
    // What the test hangs on: the whole-map pooling, or the stored (signed) norm scales, are far off.
    // The step classifiers cls.0 (3) and cls.1 (2) join and split over any heads of 5 classes.
    for (const std::vector<int>& heads : {std::vector<int>{5}, std::vector<int>{1, 4}}) {
      DeepLabOptions o = m->options();
      o.heads = heads;
      DeepLab other(o);
      EXPECT_TRUE(weights::load_state_dict(other, p.state, {LoadMode::full, true}, "mib").ok());
      other.eval();
      // Float rounding differs with the CPU's kernels (0 on one machine, 2.9e-6 on another).
      EXPECT_LT(max_abs_diff(other.forward(p.input).logits, p.output), 1e-4) << heads.size() << " heads";
    }
    auto global = build(0);
    weights::load_state_dict(*global, p.state, {LoadMode::full, true}, "mib");
    const double global_diff = max_abs_diff(global->forward(p.input).logits, p.output);
    auto raw = build(2);
    weights::load_state_dict(*raw, p.state, {LoadMode::full, true, false}, "mib");
    const double raw_diff = max_abs_diff(raw->forward(p.input).logits, p.output);
    std::printf("  pooling the whole map instead: %.3g; signed scales as stored: %.3g\n", global_diff, raw_diff);
    EXPECT_GT(global_diff, 0.1);
    EXPECT_GT(raw_diff, 1.0);
  }
  {
    // Stride 8 (rates 12/24/32), one head of 5 classes (an offline model's single cls.0), whole-map
    // pooling: MiB's default window of 32 cells covers this 6x8 map, so it pools the whole map too.
    auto p = read_mib_parity("mib_deeplabv3_resnet50_os8");
    for (const std::vector<int>& heads : {std::vector<int>{5}, std::vector<int>{3, 2}}) {
      DeepLabOptions o{heads, 50, 8, {}, Norm::bn_leaky, false, false};
      o.layout = DeepLabLayout::mib;
      o.eval_pooling = 32;
      DeepLab m(o);
      auto report = weights::load_state_dict(m, p.state, {LoadMode::full, true}, "mib");
      EXPECT_TRUE(report.ok()) << report.to_string();
      m.eval();
      const double diff = max_abs_diff(m.forward(p.input).logits, p.output);
      std::printf("parity mib deeplabv3_resnet50 os8, %zu head(s): max |cseg - reference| = %.3g (output max %.3g)\n",
                  heads.size(), diff, p.output.abs().max().item<double>());
      EXPECT_LT(diff, 1e-4);
    }
    // A torchvision-layout model cannot take it, and the error says which layout can.
    DeepLab tv(DeepLabOptions{{5}, 50, 8, {}, Norm::bn_leaky, false, false});
    test::expect_error(
        [&] {
          weights::load_state_dict(tv, p.state, {LoadMode::full, true}, "mib.pth");
        },
        {"mib.pth: the weights do not fit the model", "model.layout: mib"});
  }
}

TEST(LoadReport, TorchvisionCheckpointLoadsWithAnEmptyReport) {
  // A real torchvision state_dict() (an OrderedDict, zip format) with the values left out.
  DeepLab m(DeepLabOptions{{5}, 50, 8, {}, Norm::bn, false, true});
  auto report = weights::load_weights(m, fixture("deeplabv3_resnet50_shapes.pt"), {LoadMode::full, true});
  EXPECT_TRUE(report.ok()) << report.to_string();
  EXPECT_EQ(report.found_at, "root");
  EXPECT_EQ(report.loaded, int(m.named_parameters().size() + m.named_buffers().size()));
}

TEST(LoadReport, AWrongFileNamesTheBadKeys) {
  DeepLab m(DeepLabOptions{{5}, 50, 8, {}, Norm::bn, false, true});
  const auto wrong = fixture("deeplabv3_resnet50_wrong.pt");
  auto r = weights::load_weights(m, wrong, {LoadMode::full, false});
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.missing, (std::vector<std::string>{"backbone.layer1.0.conv1.weight", "classifier.1.weight"}));
  EXPECT_EQ(r.unexpected, (std::vector<std::string>{"backbone.layer1.0.conv1.weightt"}));
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_NE(r.mismatched[0].find("backbone.conv1.weight: file [64, 3, 5, 5] vs model [64, 3, 7, 7]"),
            std::string::npos);
  const auto text = r.to_string();
  EXPECT_NE(text.find("missing (model has, file lacks): classifier.1.weight"), std::string::npos) << text;
  // Strict loading fails on one line naming the file and the keys, and copies nothing.
  auto before = m.named_parameters()["backbone.layer2.0.conv1.weight"].clone();
  test::expect_error(
      [&] {
        weights::load_weights(m, wrong, {LoadMode::full, true});
      },
      {"deeplabv3_resnet50_wrong.pt: the weights do not fit the model: 2 missing "
       "(backbone.layer1.0.conv1.weight, classifier.1.weight); 1 unexpected"});
  EXPECT_TRUE(torch::equal(before, m.named_parameters()["backbone.layer2.0.conv1.weight"]));
}

TEST(LoadReport, BackboneOnlyFromAnImageNetResNetAndSkippingTheClassifier) {
  auto p = read_parity("resnet50");  // conv1.weight, layer1..4, fc: an ImageNet checkpoint's keys
  DeepLab m(DeepLabOptions{{7}, 50, 16, {}, Norm::bn, true, false});
  auto r = weights::load_state_dict(m, p.state, {LoadMode::backbone, true}, "imagenet");
  EXPECT_TRUE(r.ok()) << r.to_string();
  EXPECT_EQ(r.ignored, 2);  // fc.weight, fc.bias
  EXPECT_TRUE(torch::equal(m.named_parameters()["backbone.layer3.5.conv2.weight"],
                           synth("layer3.5.conv2.weight", {256, 256, 3, 3})));
  // The full model strictly would miss the decoder: the report says so.
  EXPECT_FALSE(weights::load_state_dict(m, p.state, {LoadMode::full, false}, "imagenet").ok());

  // torchvision's 5-class DeepLab into a 9-class model: everything but the heads.
  auto dl = read_parity("deeplabv3_resnet50");
  DeepLab nine(DeepLabOptions{{9}, 50, 8, {}, Norm::bn, false, true});
  EXPECT_FALSE(weights::load_state_dict(nine, dl.state, {LoadMode::full, false}, "dl").ok());
  auto skip = weights::load_state_dict(nine, dl.state, {LoadMode::skip_classifier, true}, "dl");
  EXPECT_TRUE(skip.ok()) << skip.to_string();
  EXPECT_EQ(skip.ignored, 4);  // classifier.4 and aux_classifier.4, weight and bias
}

TEST(LoadReport, InPlaceAbnResNetNamesAndDataParallelPrefix) {
  // MiB/PLOP's ImageNet ResNet names: mod1.conv1, mod{2..5}.block{n}.convs.{conv,bn}{i}, proj_*.
  DeepLab m(DeepLabOptions{{4}, 18, 16, {}, Norm::bn_leaky, false, false});
  weights::NamedTensors abn;
  for (auto& kv : m.named_parameters()) {
    std::string k = kv.key();
    if (k.rfind("backbone.", 0) != 0) continue;
    k = k.substr(9);
    std::smatch s;
    static const std::regex layer(R"(^layer(\d)\.(\d+)\.(.*)$)");
    if (std::regex_match(k, s, layer)) {
      std::string rest = s[3].str();
      if (rest.rfind("downsample.0", 0) == 0)
        rest = "proj_conv" + rest.substr(12);
      else if (rest.rfind("downsample.1", 0) == 0)
        rest = "proj_bn" + rest.substr(12);
      else
        rest = "convs." + rest;
      k = fmt::format("mod{}.block{}.{}", std::stoi(s[1]) + 1, std::stoi(s[2]) + 1, rest);
    } else {
      k = "mod1." + k;
    }
    abn.emplace_back("module." + k, torch::full(kv.value().sizes(), 0.5));
  }
  auto r = weights::load_state_dict(m, abn, {LoadMode::backbone, false}, "abn");
  EXPECT_TRUE(r.missing.size() > 0);  // BN running statistics were left out of this file
  EXPECT_TRUE(r.unexpected.empty()) << r.to_string();
  EXPECT_TRUE(r.mismatched.empty()) << r.to_string();
  EXPECT_EQ(r.loaded, int(abn.size()));
  // Trained with InPlaceABN (the default): the norm computes with |w| + eps; with plain ABN: w.
  EXPECT_TRUE(torch::equal(m.named_parameters()["backbone.layer4.1.bn2.weight"], torch::full({512}, 0.5) + 1e-5));
  EXPECT_TRUE(torch::equal(m.named_parameters()["backbone.layer4.1.conv2.weight"], torch::full({512, 512, 3, 3}, 0.5)));
  weights::load_state_dict(m, abn, {LoadMode::backbone, false, /*inplace_abn_scale=*/false}, "abn");
  EXPECT_TRUE(torch::equal(m.named_parameters()["backbone.layer4.1.bn2.weight"], torch::full({512}, 0.5)));
}

TEST(LoadReport, ReferenceClassifierNamesOfFastScnnAndUNet) {
  // The Fast-SCNN reference keeps its last conv as classifier.conv.1 and the aux one as auxlayer.4;
  // milesial's UNet as outc.conv.
  auto rename = [](Segmenter& m, const std::map<std::string, std::string>& prefixes) {
    weights::NamedTensors out;
    for (auto& kv : m.named_parameters()) {
      std::string k = kv.key();
      for (auto& [ours, ref] : prefixes)
        if (k.rfind(ours, 0) == 0) k = ref + k.substr(ours.size());
      out.emplace_back(k, kv.value().clone().fill_(0.25));
    }
    for (auto& kv : m.named_buffers()) out.emplace_back(kv.key(), kv.value().clone());
    return out;
  };
  FastScnn f(FastScnnOptions{{19}, true, 0.1});
  auto fr = weights::load_state_dict(
      f, rename(f, {{"classifier.heads.0", "classifier.conv.1"}, {"aux_heads.0", "auxlayer.4"}}),
      {LoadMode::full, true}, "fast_scnn_citys");
  EXPECT_TRUE(fr.ok()) << fr.to_string();
  EXPECT_TRUE(torch::equal(f.named_parameters()["classifier.heads.0.weight"], torch::full({19, 128, 1, 1}, 0.25)));

  UNet u(UNetOptions{{3}, 8, true, Norm::bn, false, 0.0});
  auto ur = weights::load_state_dict(u, rename(u, {{"outc.heads.0", "outc.conv"}}), {LoadMode::full, true}, "unet");
  EXPECT_TRUE(ur.ok()) << ur.to_string();
  // milesial's names for the first levels.
  auto params = u.named_parameters();
  for (const char* key :
       {"inc.double_conv.0.weight", "inc.double_conv.4.bias", "down1.maxpool_conv.1.double_conv.3.weight",
        "up1.conv.double_conv.0.weight", "up4.conv.double_conv.4.weight", "outc.heads.0.weight"})
    EXPECT_NE(params.find(key), nullptr) << key;
}

TEST(LoadReport, CsegCheckpointsAreWeightsToo) {
  test::TempDir d;
  UNet a(UNetOptions{{3, 2}, 8, true, Norm::bn, false, 0.0});
  torch::serialize::OutputArchive root, model;
  root.write("format", torch::tensor(int64_t(1)));
  a.save(model);
  root.write("model", model);
  root.save_to((d / "step1.pt").string());
  UNet b(UNetOptions{{3, 2}, 8, true, Norm::bn, false, 0.0});
  auto r = weights::load_weights(b, (d / "step1.pt").string(), {LoadMode::full, true});
  EXPECT_TRUE(r.ok()) << r.to_string();
  EXPECT_EQ(r.found_at, "cseg checkpoint");
  EXPECT_TRUE(torch::equal(a.named_parameters()["up2.conv.double_conv.0.weight"],
                           b.named_parameters()["up2.conv.double_conv.0.weight"]));
}
