#include <gtest/gtest.h>

#include <filesystem>

#include "cseg/config/config.h"
#include "cseg/config/experiment.h"
#include "cseg/config/pretrain.h"
#include "fixtures.h"

using namespace cseg;
using cseg::test::expect_error;
using cseg::test::TempDir;

namespace {
void write(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }

const char* kMinimal = R"(
dataset: {name: voc, root: /tmp}
train: {iterations: 5}
)";
}  // namespace

TEST(Config, BasesMergeAndOverridesWin) {
  TempDir d;
  write(d / "base.yaml", "train: {iterations: 5, batch_size: 4}\noptim: {lr: 0.1}\ndataset: {name: voc, root: /x}\n");
  write(d / "exp.yaml", "_base_: base.yaml\noptim: {lr: 0.2}\n");
  auto tree = config::load({(d / "exp.yaml").string(), {"train.batch_size=7", "optim.nesterov=true"}, ""});
  auto cfg = config::parse_experiment(tree);
  EXPECT_EQ(cfg.train.iterations, 5);   // from the base
  EXPECT_DOUBLE_EQ(cfg.optim.lr, 0.2);  // the file overrides its base
  EXPECT_EQ(cfg.train.batch_size, 7);   // the command line overrides both
  EXPECT_TRUE(cfg.optim.nesterov);
  EXPECT_DOUBLE_EQ(cfg.optim.momentum, 0.9);  // untouched default
  EXPECT_EQ(tree.origin("optim.lr"), (d / "exp.yaml").string());
  EXPECT_EQ(tree.origin("train.batch_size"), "command line");
}

TEST(Config, UnknownKeyNamesKeyAndFile) {
  TempDir d;
  write(d / "exp.yaml", std::string(kMinimal) + "optim: {lrr: 0.1}\n");
  expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""}));
      },
      {"unknown config key", "'optim.lrr'", "exp.yaml"});
}

TEST(Config, KeysForComponentsNotInUseAreNamedAndAnErrorWhenStrict) {
  TempDir d;
  write(d / "exp.yaml", std::string(kMinimal) + "methods: [finetune]\nmethod_options: {mib: {kd_weight: 5}}\n");
  const std::string p = (d / "exp.yaml").string();
  // By default a warning: the experiment parses (a suite's base file may hold other runs' options).
  EXPECT_NO_THROW(config::parse_experiment(config::load({p, {}, ""})));
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"strict=true"}, ""}));
      },
      {"'method_options.mib'", "exp.yaml", "method 'mib' is not in methods [finetune]", "strict"});
  // With the method in use it is fine, strict or not.
  EXPECT_NO_THROW(config::parse_experiment(config::load({p, {"strict=true", "methods=[finetune,mib]"}, ""})));
  // A label map for a loader that ignores it; adaptation settings outside domain scenarios.
  write(d / "b.yaml", kMinimal);
  const std::string b = (d / "b.yaml").string();
  EXPECT_NO_THROW(config::parse_experiment(config::load({b, {"strict=true"}, ""})));
  expect_error(
      [&] {
        config::parse_experiment(config::load({b, {"strict=true", "dataset.label_map=m.txt"}, ""}));
      },
      {"'dataset.label_map'", "command line", "only the folder dataset", "'voc' ignores it"});
  expect_error(
      [&] {
        config::parse_experiment(config::load({b, {"strict=true", "adaptation.threshold=0.5"}, ""}));
      },
      {"'adaptation.threshold'", "command line", "scenario.type: domain"});
}

TEST(Config, WrongTypeNamesKeyFileAndValue) {
  TempDir d;
  write(d / "exp.yaml", std::string(kMinimal) + "optim: {lr: fast}\n");
  expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""}));
      },
      {"'optim.lr'", "exp.yaml", "expected a number", "fast"});
}

TEST(Config, WrongTypeFromCommandLine) {
  TempDir d;
  write(d / "exp.yaml", kMinimal);
  expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {"train.batch_size=[1,2]"}, ""}));
      },
      {"'train.batch_size'", "command line", "expected an integer"});
}

// A method option may be a list (PLOP's `faithful`): it reaches the method joined by commas, from
// a file or the command line; a nested value is an error naming the key.
TEST(Config, MethodOptionListsArriveJoined) {
  TempDir d;
  write(d / "exp.yaml",
        std::string(kMinimal) + "method_options: {plop: {faithful: [entropy, median], pod_weight: 0.02}}\n");
  auto cfg = config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, ""}));
  EXPECT_EQ(cfg.method_options["plop"]["faithful"], "entropy,median");
  EXPECT_EQ(cfg.method_options["plop"]["pod_weight"], "0.02");
  cfg = config::parse_experiment(
      config::load({(d / "exp.yaml").string(), {"method_options.plop.faithful=[ce_mean]"}, ""}));
  EXPECT_EQ(cfg.method_options["plop"]["faithful"], "ce_mean");
  expect_error(
      [&] {
        config::parse_experiment(config::load({(d / "exp.yaml").string(), {"method_options.plop.faithful=[[a]]"}, ""}));
      },
      {"'method_options.plop.faithful'", "command line", "a value or a list of values"});
}

TEST(Config, EnvFileResolvesPathsAndMissingOnesFail) {
  TempDir d;
  write(d / "env.yaml", "data_root: /datasets\n");
  write(d / "exp.yaml", "dataset: {name: voc, root: '${data_root}/VOC2012'}\ntrain: {iterations: 1}\n");
  auto cfg = config::parse_experiment(config::load({(d / "exp.yaml").string(), {}, (d / "env.yaml").string()}));
  EXPECT_EQ(cfg.dataset.root, "/datasets/VOC2012");
  write(d / "bad.yaml", "dataset: {name: voc, root: '${no_such_root_xyz}/a'}\ntrain: {iterations: 1}\n");
  expect_error(
      [&] {
        config::load({(d / "bad.yaml").string(), {}, ""});
      },
      {"'dataset.root'", "no_such_root_xyz", "bad.yaml"});
}

TEST(Config, BadChoicesAndBudgetsAreErrors) {
  TempDir d;
  write(d / "exp.yaml", kMinimal);
  const std::string p = (d / "exp.yaml").string();
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"scenario.mode=mixed"}, ""}));
      },
      {"'scenario.mode'", "mixed", "overlap, disjoint, sequential"});
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"train.epochs=2"}, ""}));
      },
      {"exactly one of epochs, iterations, steps_per_class"});
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"model.layout=mib"}, ""}));
      },
      {"model.layout", "needs name deeplabv3", "fast_scnn"});
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"model.layout=abn"}, ""}));
      },
      {"'model.layout'", "torchvision, mib"});
  expect_error(
      [&] {
        config::parse_experiment(config::load({p, {"model.pretrained_norm_act=inplace"}, ""}));
      },
      {"'model.pretrained_norm_act'", "iabn_sync, iabn, abn"});
  expect_error([&] { config::load({p, {"novalue"}, ""}); }, {"override 'novalue'", "key=value"});
  expect_error([&] { config::load({(d / "missing.yaml").string(), {}, ""}); }, {"missing.yaml", "does not exist"});
  write(d / "syntax.yaml", "a: [1, 2\n");
  expect_error([&] { config::load({(d / "syntax.yaml").string(), {}, ""}); }, {"syntax.yaml", "YAML syntax error"});
}

// Every experiment shipped in configs/ parses (a renamed key would otherwise surface only when a
// user runs it); a base file is checked as the base of a minimal experiment.
TEST(Config, EveryShippedConfigParses) {
  TempDir d;
  int experiments = 0, bases = 0, pretraining = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(CSEG_SOURCE_DIR) + "/configs")) {
    const auto& path = entry.path();
    if (path.extension() != ".yaml" || path.filename().string().rfind("suite", 0) == 0)
      continue;  // suites list experiments
    SCOPED_TRACE(path.string());
    std::string file = path.string();
    if (path.parent_path().filename() == "pretrain") {  // pretraining files, not experiments
      EXPECT_NO_THROW(config::parse_pretrain(config::load({file, {}, ""})));
      ++pretraining;
      continue;
    }
    if (path.parent_path().filename() == "base") {
      write(d / "exp.yaml", "_base_: [" + file + "]\n" + kMinimal);
      file = (d / "exp.yaml").string();
      ++bases;
    } else {
      ++experiments;
    }
    EXPECT_NO_THROW(config::parse_experiment(config::load({file, {}, ""})));
  }
  EXPECT_GE(experiments, 10);
  EXPECT_GE(bases, 5);
  EXPECT_GE(pretraining, 1);
}

TEST(Config, DumpIsTheResolvedConfig) {
  TempDir d;
  write(d / "exp.yaml", kMinimal);
  auto tree = config::load({(d / "exp.yaml").string(), {"seed=3"}, ""});
  const std::string text = tree.dump();
  EXPECT_NE(text.find("seed: 3"), std::string::npos);
  EXPECT_NE(text.find("root: /tmp"), std::string::npos);
}

// Config files are shared and downloaded too: shapes YAML allows but a config cannot mean are
// one-line errors naming the file, never a YAML exception, an endless read or exhausted memory.
TEST(Config, HostileYamlIsAnErrorNamingTheFile) {
  TempDir d;
  // Ten levels of ten aliases: 10^10 values once expanded (composition copies the expanded tree).
  std::string laughs = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int k = 1; k < 10; ++k) {
    laughs += "l" + std::to_string(k) + ": &l" + std::to_string(k) + " [";
    for (int j = 0; j < 10; ++j) laughs += (j ? ", *l" : "*l") + std::to_string(k - 1);
    laughs += "]\n";
  }
  write(d / "laughs.yaml", laughs);
  expect_error(
      [&] {
        config::load({(d / "laughs.yaml").string(), {}, ""});
      },
      {"laughs.yaml", "more than 1000000 values", "aliases"});
  // A list used as a key (yaml-cpp's own conversion error before the fix).
  write(d / "key.yaml", "train:\n  [a, b]: 1\n");
  expect_error([&] { config::load({(d / "key.yaml").string(), {}, ""}); }, {"key.yaml", "under 'train'", "line 2"});
  write(d / "base_list.yaml", "_base_: [{a: 1}]\n");
  expect_error([&] { config::load({(d / "base_list.yaml").string(), {}, ""}); }, {"base_list.yaml", "_base_"});
  // A base that is a device would be read for ever.
  write(d / "dev.yaml", "_base_: /dev/zero\n");
  expect_error([&] { config::load({(d / "dev.yaml").string(), {}, ""}); }, {"/dev/zero", "not a regular file"});
}
