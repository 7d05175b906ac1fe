// The method registry and hooks (methods/method.h) through the trainer: every method trains two
// steps, options are checked by name, a step reruns exactly from its checkpoint, and feature maps
// must be declared.
#include <gtest/gtest.h>

#include "../fixtures.h"
#include "../tiny_experiment.h"
#include "cseg/core/files.h"
#include "cseg/engine/checkpoint.h"
#include "cseg/engine/trainer.h"
#include "cseg/methods/bacs.h"
#include "cseg/methods/continual_losses.h"
#include "cseg/methods/sdr.h"
#include "cseg/methods/ssul.h"

using namespace cseg;
using namespace cseg::methods;

namespace {
/// Reads a feature map without declaring it (Method::needs_features() stays false).
class UndeclaredFeatureReader : public methods::FineTune {
 public:
  torch::Tensor task_loss(methods::StepContext& c, const Batch& b, const models::ModelOutput& out) override {
    out.feature("decoder");
    return FineTune::task_loss(c, b, out);
  }
};
}  // namespace

TEST(ContinualMethods, UnknownOptionsFailByName) {
  test::expect_error([] { make_method("mib", {{"kd_wieght", "3"}}); }, {"method_options.mib.kd_wieght", "kd_weight"});
  test::expect_error(
      [] {
        make_method("ewc", {{"weight", "lots"}});
      },
      {"method_options.ewc.weight", "expected a number"});
  test::expect_error([] { make_method("finetune", {{"x", "1"}}); }, {"method_options.finetune.x"});
}

// Every method trains two steps (3 classes, then 2) and evaluates, with the loss terms listed
// here logged (a method's own test file may check its terms instead: test_dkd.cpp).
TEST(ContinualMethods, EveryMethodTrainsTwoSteps) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const std::map<std::string, std::vector<std::string>> terms{
      {"lwf", {"kd"}},
      {"lwf_mc", {"bce", "kd"}},
      {"ilt", {"kd", "feature_kd"}},
      {"mib", {"kd"}},
      {"plop", {"pod"}},
      {"ewc", {"ewc"}},
      {"pi", {"pi"}},
      {"rw", {"rw"}},
      {"replay", {}},
      {"der", {"der"}},
      {"der++", {"der", "der_ce"}},
      {"sdr", {"kd", "attraction", "repulsion", "sparsity", "matching"}},
      {"ssul", {"bce"}},
      {"ssul-m", {"bce"}},
      {"bacs", {"detector", "der", "der_ce"}},
      {"latent_replay", {"latent_replay"}},
      {"plop faithful", {"pod"}},
      {"dft_star", {}},
      {"sdr faithful", {"kd", "attraction", "repulsion", "sparsity", "matching"}}};
  // Runs with options: the label's first word is the method.
  // (PLOP's reference regions need maps at least 4 wide: Fast-SCNN's 1 x 1 global features of a
  // 32 x 32 crop are an error there, tested in test_plop_reference.cpp.)
  const std::map<std::string, std::map<std::string, std::string>> options{
      {"plop faithful", {{"faithful", "entropy,median,ce_mean"}}}, {"sdr faithful", {{"faithful", "all"}}}};
  // Every registered method (a new one is covered without being listed), and the option runs.
  std::vector<std::string> runs = method_names();
  for (const auto& [label, given] : options) runs.push_back(label);
  for (const auto& name : runs) {
    SCOPED_TRACE(name);
    const auto listed = terms.find(name);
    const auto expected = listed == terms.end() ? std::vector<std::string>{} : listed->second;
    auto cfg = test::tiny_config((d / "data").string(), (d / name).string(), 3);
    auto data = engine::open_experiment_data(cfg, "", 1);
    auto given = options.find(name);
    auto method = make_method(name.substr(0, name.find(' ')),
                              given == options.end() ? std::map<std::string, std::string>{} : given->second);
    auto r = engine::Trainer(cfg, data, *method, (d / name).string()).run();
    ASSERT_EQ(r["steps"].size(), 2u);
    EXPECT_TRUE(std::isfinite(r["steps"][1]["test"]["miou"].get<double>()));
    // Step 1's logged iterations carry the method's terms, finite.
    std::ifstream in(d / name / "metrics.jsonl");
    std::string line;
    bool seen = false;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      if (!j.contains("iteration") || j["step"] != 1) continue;
      for (const auto& t : expected) {
        ASSERT_TRUE(j.contains("loss_" + t)) << line;
        EXPECT_TRUE(std::isfinite(j["loss_" + t].get<double>())) << line;
      }
      seen = true;
    }
    EXPECT_TRUE(seen);
  }
}

// Method state (Fisher, scores, thresholds, buffers) lives in the step checkpoints: re-running a
// step from the previous step's checkpoint in a fresh process state gives the same numbers.
TEST(ContinualMethods, RerunningAStepFromItsCheckpointIsExact) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  for (const std::string name :
       {"ewc", "pi", "rw", "plop", "der++", "sdr", "ssul", "ssul-m", "bacs", "latent_replay", "dkd"}) {
    SCOPED_TRACE(name);
    const auto dir = d / name;
    auto cfg = test::tiny_config((d / "data").string(), dir.string(), 3);
    auto data = engine::open_experiment_data(cfg, "", 1);
    auto first = make_method(name);
    auto full = engine::Trainer(cfg, data, *first, dir.string()).run();
    // Forget step 1: its checkpoint (kept aside) and its results.
    std::filesystem::rename(dir / "checkpoints" / "step1.pt", dir / "first_step1.pt");
    auto saved = nlohmann::json::parse(core::read_text((dir / "results.json").string()));
    saved["steps"].erase(1);
    core::write_text_atomic((dir / "results.json").string(), saved.dump());
    auto again = make_method(name);
    auto rerun = engine::Trainer(cfg, data, *again, dir.string()).run();
    EXPECT_EQ(rerun["steps"][1]["test"]["miou"], full["steps"][1]["test"]["miou"]);
    EXPECT_EQ(rerun["steps"][1]["test"]["per_class_iou"], full["steps"][1]["test"]["per_class_iou"]);
    // The retrained step ends with exactly the same weights.
    auto a = engine::build_model_for_step(cfg, *data.scenario, 1),
         b = engine::build_model_for_step(cfg, *data.scenario, 1);
    engine::load_checkpoint((dir / "first_step1.pt").string(), *a, nullptr, nullptr);
    engine::load_checkpoint((dir / "checkpoints" / "step1.pt").string(), *b, nullptr, nullptr);
    auto pb = b->named_parameters();
    for (const auto& p : a->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << p.key();
  }
}

TEST(Methods, AMethodReadingUndeclaredFeatureMapsGetsAClearError) {
  // Fine-tuning keeps no feature taps (less memory); a method that reads them must declare it.
  test::TempDir d;
  auto cfg = test::tiny_experiment(d.path(), 2);
  auto data = engine::open_experiment_data(cfg, "", 1);
  UndeclaredFeatureReader reader;
  test::expect_error([&] { engine::Trainer(cfg, data, reader, (d / "run").string()).run(); },
                     {"no feature map 'decoder'", "needs_features"});
}
