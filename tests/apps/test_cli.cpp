// End-to-end tests of the `cseg` program: exit codes and one-line errors for bad input,
// resume after SIGKILL, starting a sequence at step k from a checkpoint.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "cseg/core/files.h"
#include "cseg/engine/checkpoint.h"
#include "tiny_experiment.h"

using namespace cseg;
namespace fs = std::filesystem;

namespace {
struct Result {
  int code;
  std::string output;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(CSEG_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

nlohmann::json results_of(const fs::path& run_dir) {
  return nlohmann::json::parse(core::read_text((run_dir / "results.json").string()));
}
}  // namespace

TEST(Cli, BadInputExitsWithAOneLineError) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "good.yaml", test::tiny_config_yaml((d / "data").string(), (d / "run").string(), 1));
  const std::string good = "-c " + (d / "good.yaml").string();
  struct Case {
    std::string args;
    std::vector<std::string> parts;
  };
  const std::vector<Case> cases{
      {good + " optim.lrr=0.1", {"unknown config key 'optim.lrr'", "command line"}},
      {good + " train.batch_size=many", {"'train.batch_size'", "expected an integer", "many"}},
      {good + " dataset.root=" + (d / "nothing").string(), {"dataset root", "nothing", "does not exist"}},
      {good + " methods=[finetune,magic]", {"unknown method 'magic'", "finetune, joint"}},
      {good + " scenario.steps=[[0,1,2],[3]]", {"scenario.steps", "cover 4 of the dataset's 5 classes"}},
  };
  for (const auto& c : cases) {
    auto r = run("train " + c.args);
    EXPECT_EQ(r.code, 2) << r.output;
    for (const auto& p : c.parts) EXPECT_NE(r.output.find(p), std::string::npos) << r.output << "\nmissing: " << p;
    // The error is the one and last line (an info banner may come before it).
    auto pos = r.output.find("error: ");
    ASSERT_NE(pos, std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\n', pos), r.output.size() - 1) << r.output;
  }
  // A path that cannot be made (a file where the run folder's parent should be): exit 2 and one
  // line naming it, not a raw filesystem_error with exit 3 (a permission test would pass as root).
  {
    auto r = run("train " + good + " output_dir=" + (d / "good.yaml" / "run").string());
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("good.yaml/run"), std::string::npos) << r.output;
    const auto pos = r.output.find("error: ");
    ASSERT_NE(pos, std::string::npos) << r.output;
    EXPECT_EQ(r.output.find('\n', pos), r.output.size() - 1) << r.output;
  }
  // A damaged results.json in the run folder is an error naming it, never a silent retrain.
  for (const std::string& text : {std::string("{\"steps\": [ {\"step\": 0,"), std::string("[1, 2]")}) {
    fs::create_directories(d / "run/finetune");
    write(d / "run/finetune/results.json", text);
    auto r = run("train " + good);
    EXPECT_EQ(r.code, 2) << r.output;
    EXPECT_NE(r.output.find("run/finetune/results.json"), std::string::npos) << r.output;
    EXPECT_EQ(core::read_text((d / "run/finetune/results.json").string()), text);  // left as it was
    EXPECT_FALSE(fs::exists(d / "run/finetune/checkpoints/step0.pt")) << "it trained anyway";
  }
  fs::remove_all(d / "run");
  // A label value outside the table: the file and the value are named.
  data::write_label_png((d / "data/masks/tr3.png").string(), test::label_map(32, 32, {{9, 0, 0, 4, 4}}),
                        data::voc_palette());
  auto r = run("scenario " + good);
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("tr3.png"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("value 9"), std::string::npos) << r.output;
}

TEST(Cli, ResumesAfterSigkillAndMatchesAnUninterruptedRun) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const int iterations = 30;  // 3 iterations per epoch: a checkpoint every 3 iterations
  write(d / "a.yaml", test::tiny_config_yaml((d / "data").string(), (d / "killed").string(), iterations));
  write(d / "b.yaml", test::tiny_config_yaml((d / "data").string(), (d / "straight").string(), iterations));

  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 1);
    dup2(null, 2);
    execl(CSEG_BINARY, CSEG_BINARY, "train", "-c", (d / "a.yaml").c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  // Kill it once step 1 has written an epoch checkpoint: mid-step, after a finished step.
  const fs::path mid = d / "killed/finetune/checkpoints/step1_last.pt";
  bool seen = false;
  for (int i = 0; i < 6000 && !seen; ++i) {
    seen = fs::exists(mid);
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) break;  // finished before we could kill it
  }
  ASSERT_TRUE(seen) << "no mid-step checkpoint appeared";
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  ASSERT_FALSE(fs::exists(d / "killed/finetune/checkpoints/step1.pt")) << "the run finished before the kill";

  auto resumed = run("train -c " + (d / "a.yaml").string());
  ASSERT_EQ(resumed.code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resuming from"), std::string::npos) << resumed.output;
  EXPECT_NE(resumed.output.find("step 1: resuming after epoch"), std::string::npos) << resumed.output;
  auto straight = run("train -c " + (d / "b.yaml").string());
  ASSERT_EQ(straight.code, 0) << straight.output;

  auto a = results_of(d / "killed"), b = results_of(d / "straight");
  const auto& sa = a["methods"]["finetune"]["steps"];
  const auto& sb = b["methods"]["finetune"]["steps"];
  ASSERT_EQ(sa.size(), 2u);
  ASSERT_EQ(sb.size(), 2u);
  for (int k = 0; k < 2; ++k) {
    // Epoch-granular checkpoints with the RNG state and a loader seeded per (step, epoch) make the
    // resumed run retrace the same iterations.
    EXPECT_NEAR(sa[k]["test"]["miou"].get<double>(), sb[k]["test"]["miou"].get<double>(), 1e-6) << "step " << k;
    EXPECT_EQ(sa[k]["test"]["confusion"], sb[k]["test"]["confusion"]) << "step " << k;
  }
}

// Every method that keeps state of its own (importance weights, anchors, buffers, prototypes,
// SSUL's unknown head, distillation teachers' statistics) resumes exactly: a run killed with
// SIGKILL at pseudo-random moments, several times and in both steps, with checkpoints every three
// iterations inside the epochs (train.checkpoint_every), ends with the confusion matrices of a run
// that was never interrupted and wrote checkpoints only at epoch ends.
TEST(Cli, EveryStatefulMethodResumesExactlyAfterRepeatedSigkills) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  const int iterations = 16;  // 2 iterations per epoch (9 images, batch 4); checkpoints every 3
  write(d / "a.yaml", test::tiny_config_yaml((d / "data").string(), (d / "killed").string(), iterations));
  write(d / "b.yaml", test::tiny_config_yaml((d / "data").string(), (d / "straight").string(), iterations));
  std::mt19937 rng(7);
  int mid_epoch = 0;
  // Every registered method that saves state of its own (Method::save): PLOP's thresholds, SDR's
  // prototypes, the regularisers' importance and anchors, SSUL's and SSUL-M's unknown head and
  // memory, the rehearsal buffers (image, logit and latent), BACS's reservoir.
  for (const std::string method :
       {"plop", "sdr", "ewc", "pi", "rw", "ssul", "ssul-m", "replay", "der", "der++", "latent_replay", "bacs", "dkd"}) {
    SCOPED_TRACE(method);
    const std::string over = " methods=[" + method + "]";
    const fs::path ckpt = d / "killed" / method / "checkpoints";
    int kills_in_step1 = 0, launches = 0;
    // Three kills: as soon as step 0, then step 1, has a checkpoint from inside an epoch (an odd
    // iteration), then at a pseudo-random moment after step 1's first one.
    struct Kill {
      std::string file;
      bool mid_epoch;
    };
    for (const Kill& plan : {Kill{"step0_last.pt", true}, Kill{"step1_last.pt", true}, Kill{"step1_last.pt", false}}) {
      if (fs::exists(ckpt / "step1.pt")) break;
      const std::string extra = "train.checkpoint_every=3";
      const fs::path log = d / fmt::format("{}.{}.log", method, launches++);
      pid_t pid = fork();
      ASSERT_GE(pid, 0);
      if (pid == 0) {
        int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(out, 1);
        dup2(out, 2);
        const std::string methods = "methods=[" + method + "]";
        execl(CSEG_BINARY, CSEG_BINARY, "train", "-c", (d / "a.yaml").c_str(), methods.c_str(), extra.c_str(),
              static_cast<char*>(nullptr));
        _exit(127);
      }
      auto ready = [&] {
        if (!fs::exists(ckpt / plan.file)) return false;
        if (!plan.mid_epoch) return true;
        try {
          return engine::read_checkpoint_state((ckpt / plan.file).string()).iteration % 2 == 1;
        } catch (const std::exception&) {
          return false;  // removed at the step's end
        }
      };
      bool finished = false;
      for (int i = 0; i < 30000 && !ready(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (waitpid(pid, nullptr, WNOHANG) == pid) {
          finished = true;
          break;
        }
      }
      if (!finished) {
        if (!plan.mid_epoch)
          std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 250)(rng)));
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
        if (plan.file == "step1_last.pt" && !fs::exists(ckpt / "step1.pt")) ++kills_in_step1;
      }
    }
    EXPECT_GE(kills_in_step1, 1) << "no kill landed inside step 1";
    auto resumed = run("train -c " + (d / "a.yaml").string() + over + " train.checkpoint_every=3");
    ASSERT_EQ(resumed.code, 0) << resumed.output;
    // Restarts that continued inside an epoch (an odd iteration count): the kill usually lands
    // before the epoch's end overwrites the checkpoint.
    std::string restarts = resumed.output;
    for (int i = 1; i < launches; ++i) restarts += core::read_text((d / fmt::format("{}.{}.log", method, i)).string());
    const std::regex resume_line(R"(resuming after epoch \d+ \(iteration (\d+)/)");
    for (std::sregex_iterator m(restarts.begin(), restarts.end(), resume_line), end; m != end; ++m)
      mid_epoch += std::stoi((*m)[1]) % 2 == 1;

    auto straight = run("train -c " + (d / "b.yaml").string() + over);
    ASSERT_EQ(straight.code, 0) << straight.output;
    const auto a = results_of(d / "killed"), b = results_of(d / "straight");
    const auto& sa = a["methods"][method]["steps"];
    const auto& sb = b["methods"][method]["steps"];
    ASSERT_EQ(sa.size(), 2u);
    ASSERT_EQ(sb.size(), 2u);
    for (int k = 0; k < 2; ++k) EXPECT_EQ(sa[k]["test"]["confusion"], sb[k]["test"]["confusion"]) << "step " << k;
    // Every logged loss (every second iteration) is the uninterrupted run's, to the last bit;
    // iterations trained again after a kill logged theirs twice, both the same.
    auto losses = [&](const fs::path& run_dir) {
      std::multimap<std::pair<int, int>, double> by_iteration;
      std::ifstream in((run_dir / method / "metrics.jsonl").string());
      for (std::string line; std::getline(in, line);) {
        const auto j = nlohmann::json::parse(line);
        if (j.contains("loss"))
          by_iteration.emplace(std::make_pair(j["step"].get<int>(), j["iteration"].get<int>()),
                               j["loss"].get<double>());
      }
      return by_iteration;
    };
    const auto killed_losses = losses(d / "killed"), straight_losses = losses(d / "straight");
    ASSERT_EQ(straight_losses.size(), size_t(iterations));  // 2 steps x 8 logged iterations
    for (const auto& [at, loss] : killed_losses) {
      ASSERT_EQ(straight_losses.count(at), 1u) << "step " << at.first << " iteration " << at.second;
      EXPECT_EQ(loss, straight_losses.find(at)->second) << "step " << at.first << " iteration " << at.second;
    }
  }
  EXPECT_GE(mid_epoch, 4) << "too few restarts continued inside an epoch to test that path";
}

TEST(Cli, StartsAtStepKFromACheckpoint) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "a.yaml", test::tiny_config_yaml((d / "data").string(), (d / "first").string(), 2));
  ASSERT_EQ(run("train -c " + (d / "a.yaml").string()).code, 0);
  const std::string ckpt = (d / "first/finetune/checkpoints/step0.pt").string();
  auto r = run("train -c " + (d / "a.yaml").string() + " output_dir=" + (d / "second").string() +
               " train.start_step=1 train.init_checkpoint=" + ckpt);
  ASSERT_EQ(r.code, 0) << r.output;
  auto res = results_of(d / "second");
  ASSERT_EQ(res["methods"]["finetune"]["steps"].size(), 1u);
  EXPECT_EQ(res["methods"]["finetune"]["steps"][0]["step"], 1);
  // A corrupt checkpoint is a clear error.
  write(d / "bad.pt", "junk");
  auto bad = run("train -c " + (d / "a.yaml").string() + " output_dir=" + (d / "third").string() +
                 " train.start_step=1 train.init_checkpoint=" + (d / "bad.pt").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("bad.pt"), std::string::npos) << bad.output;
}

TEST(Cli, ScenarioJsonAndList) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "a.yaml", test::tiny_config_yaml((d / "data").string(), (d / "run").string(), 1));
  auto r = run("scenario --json -c " + (d / "a.yaml").string());
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  ASSERT_EQ(j["steps"].size(), 2u);
  EXPECT_EQ(j["steps"][1]["step_labels"], (std::vector<int>{3, 4}));
  EXPECT_EQ(j["steps"][1]["train_ids"].size(), 9u);
  EXPECT_EQ(j["steps"][1]["train_label_map"]["1"], 0);
  EXPECT_EQ(j["steps"][1]["train_label_map"]["255"], 255);
  auto l = run("list tasks");
  EXPECT_EQ(l.code, 0);
  EXPECT_NE(l.output.find("19-1b"), std::string::npos);
}

TEST(Cli, EvalReproducesTheTrainersNumbersAndValidationKeepsTheBest) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "a.yaml", test::tiny_config_yaml((d / "data").string(), (d / "run").string(), 6));
  auto r = run("train -c " + (d / "a.yaml").string() + " eval.val_every=1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("val mIoU"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(d / "run/finetune/checkpoints/step1_best.pt"));
  auto res = results_of(d / "run");
  const auto& step1 = res["methods"]["finetune"]["steps"][1];
  EXPECT_FALSE(step1["val_best_miou"].is_null());
  auto e = run("eval -c " + (d / "a.yaml").string() + " --checkpoint " +
               (d / "run/finetune/checkpoints/step1.pt").string() + " --step 1");
  ASSERT_EQ(e.code, 0) << e.output;
  auto j = nlohmann::json::parse(e.output);
  EXPECT_NEAR(j["miou"].get<double>(), step1["test"]["miou"].get<double>(), 1e-9);
  // A checkpoint of the wrong step does not fit the model built for step 1.
  auto wrong = run("eval -c " + (d / "a.yaml").string() + " --checkpoint " +
                   (d / "run/finetune/checkpoints/step0.pt").string() + " --step 1");
  EXPECT_EQ(wrong.code, 2);
  EXPECT_NE(wrong.output.find("heads"), std::string::npos) << wrong.output;

  // SSUL predicts with its unknown class (counted as background) from its saved head: eval
  // takes the method from the run folder and reproduces the trainer's number.
  auto s = run("train -c " + (d / "a.yaml").string() + " 'methods=[ssul]' output_dir=" + (d / "ssul").string());
  ASSERT_EQ(s.code, 0) << s.output;
  const double trained = results_of(d / "ssul")["methods"]["ssul"]["steps"][1]["test"]["miou"].get<double>();
  const std::string ck = (d / "ssul/ssul/checkpoints/step1.pt").string();
  auto es = run("eval -c " + (d / "a.yaml").string() + " 'methods=[ssul]' --checkpoint " + ck + " --step 1");
  ASSERT_EQ(es.code, 0) << es.output;
  EXPECT_EQ(nlohmann::json::parse(es.output)["method"], "ssul");
  EXPECT_NEAR(nlohmann::json::parse(es.output)["miou"].get<double>(), trained, 1e-9);
  // Evaluated as plain argmax (as fine-tuning), the same weights score differently here.
  auto plain = run("eval -c " + (d / "a.yaml").string() + " --method finetune --checkpoint " + ck + " --step 1");
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_NE(nlohmann::json::parse(plain.output)["miou"].get<double>(), trained);
}

TEST(Cli, PredictModelInfoAndWeights) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "c.yaml", test::tiny_config_yaml((d / "data").string(), (d / "run").string(), 1));
  const std::string cfg = "-c " + (d / "c.yaml").string();
  ASSERT_EQ(run("train " + cfg).code, 0);
  const auto ckpt = (d / "run" / "finetune" / "checkpoints" / "step1.pt").string();

  // A folder tree: outputs keep the sub-folders; a non-image file is skipped.
  fs::create_directories(d / "in" / "sub");
  fs::copy_file(d / "data" / "images" / "va0.jpg", d / "in" / "a.jpg");
  fs::copy_file(d / "data" / "images" / "va1.jpg", d / "in" / "sub" / "b.jpg");
  write(d / "in" / "notes.txt", "not an image");
  auto r = run("predict " + cfg + " --checkpoint " + ckpt + " -i " + (d / "in").string() + " -o " +
               (d / "out").string() + " --probs --logits");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("predicted 2 image(s)"), std::string::npos) << r.output;
  for (const char* f :
       {"a.png", "a_overlay.jpg", "a_probs.npy", "a_logits.npy", "sub/b.png", "sub/b_overlay.jpg", "classes.json"})
    EXPECT_TRUE(fs::exists(d / "out" / f)) << f;
  auto labels = data::read_label_png((d / "out" / "a.png").string());
  EXPECT_EQ(labels.rows, 32);
  double lo, hi;
  cv::minMaxLoc(labels, &lo, &hi);
  EXPECT_LE(hi, 4);  // the model's 5 classes
  // .npy: version 1.0 header, float32 [5, 32, 32], probabilities sum to 1 per pixel.
  const std::string npy = core::read_text((d / "out" / "a_probs.npy").string());
  EXPECT_EQ(npy.substr(0, 6), "\x93NUMPY");
  EXPECT_NE(npy.find("'shape': (5, 32, 32)"), std::string::npos);
  const size_t header = 10 + (uint8_t(npy[8]) | (uint8_t(npy[9]) << 8));
  ASSERT_EQ(npy.size(), header + 5 * 32 * 32 * 4);
  EXPECT_EQ(header % 64, 0u);
  const float* p = reinterpret_cast<const float*>(npy.data() + header);
  float sum = 0;
  for (int c = 0; c < 5; ++c) sum += p[c * 32 * 32 + 100];
  EXPECT_NEAR(sum, 1.0f, 1e-5);
  // Per-image uncertainty, in file order: a header and one row each, entropy in [0, 1].
  const std::string csv = core::read_text((d / "out" / "uncertainty.csv").string());
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "image,mean_entropy,new_environment");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);
  const auto a_row = csv.find("a.jpg,");
  ASSERT_NE(a_row, std::string::npos) << csv;
  const double h = std::stod(csv.substr(a_row + 6));
  EXPECT_GT(h, 0);
  EXPECT_LE(h, 1);

  // Bad input: one-line errors naming what is wrong.
  r = run("predict " + cfg + " --checkpoint " + ckpt + " -i " + (d / "in" / "notes.txt").string() + " -o " +
          (d / "o2").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("notes.txt' is not an image"), std::string::npos) << r.output;
  r = run("predict " + cfg + " -i " + (d / "in").string() + " -o " + (d / "o3").string());
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.output.find("--checkpoint"), std::string::npos) << r.output;

  // model-info: a table with the total; JSON with per-module multiply-adds.
  r = run("model-info model.name=deeplabv3 model.backbone=resnet18 --size 64x96 --classes 5 --depth 1");
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("backbone"), std::string::npos);
  EXPECT_NE(r.output.find("total"), std::string::npos);
  r = run("model-info model.name=unet model.unet_channels=4 --size 32x32 --classes 3 --json");
  ASSERT_EQ(r.code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output);
  EXPECT_EQ(j["classes"].get<int>(), 3);
  EXPECT_GT(j["macs"].get<int64_t>(), 0);
  EXPECT_EQ(run("model-info --size big").code, 2);
  // A config whose model.pretrain has not been made yet: model-info reads the model's options and
  // does not pretrain (this one could not: its image folder does not exist).
  core::write_text_atomic((d / "pre.yaml").string(),
                          "name: never\ndata: {source: folder, root: " + (d / "nowhere").string() +
                              "}\nmodel: {name: fast_scnn}\ntrain: {epochs: 1}\n");
  r = run("model-info " + cfg + " model.pretrain=" + (d / "pre.yaml").string() + " --size 64x64");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("total"), std::string::npos) << r.output;

  // weights list / check against a torchvision checkpoint layout.
  const std::string tv = std::string(CSEG_SOURCE_DIR) + "/tests/files/weights/deeplabv3_resnet50_shapes.pt";
  r = run("weights list " + tv);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("classifier.4.weight"), std::string::npos);
  r = run("weights check --weights " + tv +
          " model.name=deeplabv3 model.backbone=resnet50 model.output_stride=8 model.aux=true --classes 5");
  EXPECT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("report empty"), std::string::npos) << r.output;
  r = run("weights check --weights " + tv + " model.name=deeplabv3 model.backbone=resnet50 --classes 5");
  EXPECT_EQ(r.code, 1) << r.output;  // no aux head in the model: aux_classifier.* unexpected
  EXPECT_NE(r.output.find("unexpected (file has, model lacks): aux_classifier.0.weight"), std::string::npos)
      << r.output;
}

TEST(Cli, SuiteRunsAGridAndAggregatesSeeds) {
  test::TempDir d;
  test::write_tiny_dataset(d / "data");
  write(d / "tiny.yaml", test::tiny_config_yaml((d / "data").string(), (d / "unused").string(), 1));
  write(d / "suite.yaml", fmt::format("name: grid\noutput_dir: {}\nscenarios: [tiny.yaml]\nmethods: [finetune, mib]\n"
                                      "seeds: [0, 1]\nparallel: 2\noverrides: [train.iterations=2]\n",
                                      (d / "out").string()));
  auto r = run("suite " + (d / "suite.yaml").string());
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("[4/4]"), std::string::npos) << r.output;
  const auto table = core::read_text((d / "out" / "table.md").string());
  EXPECT_NE(table.find("| finetune |"), std::string::npos) << table;
  EXPECT_NE(table.find("| mib |"), std::string::npos) << table;
  EXPECT_NE(table.find(" ± "), std::string::npos) << table;    // two seeds: mean ± std
  EXPECT_NE(table.find("| 2 |"), std::string::npos) << table;  // runs per row
  const auto csv = core::read_text((d / "out" / "table.csv").string());
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 3);  // header + 2 methods
  EXPECT_TRUE(fs::exists(d / "out" / "report.html"));      // rendered in report/test_html_report.cpp
  // A rerun skips the finished runs and gives the same table.
  auto again = run("suite " + (d / "suite.yaml").string());
  ASSERT_EQ(again.code, 0) << again.output;
  EXPECT_EQ(core::read_text((d / "out" / "table.md").string()), table);
  // A bad suite file fails on one line.
  write(d / "bad.yaml", "scenarios: [tiny.yaml]\nmethods: [magic]\n");
  auto bad = run("suite " + (d / "bad.yaml").string());
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.output.find("unknown method 'magic'"), std::string::npos) << bad.output;
}
