#include "cseg/engine/recorder.h"

#include <fmt/format.h>

#include <filesystem>

#include "cseg/core/files.h"
#include "cseg/logging/tensorboard.h"

namespace fs = std::filesystem;

namespace cseg::engine {

namespace {

class RunFolderRecorder : public Recorder {
 public:
  RunFolderRecorder(std::string run_dir, std::string method, std::vector<std::string> class_names)
      : dir_(std::move(run_dir)),
        method_(std::move(method)),
        class_names_(std::move(class_names)),
        metrics_((dir_ / "metrics.jsonl").string()) {}

  void begin_step(int step) override {
    tb_step_ =
        std::make_unique<logging::TensorBoardWriter>((dir_ / "tensorboard" / fmt::format("step{}", step)).string());
  }

  void iteration(const IterationRecord& r) override {
    nlohmann::json line{{"method", method_}, {"step", r.step}, {"iteration", r.iteration},
                        {"epoch", r.epoch},  {"lr", r.lr},     {"loss", r.loss}};
    for (const auto& [name, value] : r.terms) line["loss_" + name] = value;
    core::append_line(metrics_, line.dump());
    tb_step_->scalar("lr", r.lr, r.iteration);
    tb_step_->scalar("loss/total", r.loss, r.iteration);
    for (const auto& [name, value] : r.terms) tb_step_->scalar("loss/" + name, value, r.iteration);
  }

  void validation(int step, int epoch, double miou) override {
    core::append_line(metrics_,
                      nlohmann::json{{"method", method_}, {"step", step}, {"epoch", epoch}, {"val_miou", miou}}.dump());
  }

  void step_evaluated(int step, const nlohmann::json& results, const EncodedImage& grid) override {
    if (!tb_sequence_)
      tb_sequence_ = std::make_unique<logging::TensorBoardWriter>((dir_ / "tensorboard" / "sequence").string());
    auto& tb = *tb_sequence_;
    const auto& test = results["test"];
    for (const char* key : {"miou", "miou_old", "miou_new", "hiou"})
      if (test[key].is_number()) tb.scalar(std::string("test/") + key, test[key].get<double>(), step);
    // Per-class IoU as scalars and as a Markdown table in the text tab.
    std::string table = "| class | IoU (%) |\n|---|---|\n";
    const auto& iou = test["per_class_iou"];
    for (size_t c = 0; c < iou.size() && c < class_names_.size(); ++c) {
      if (!iou[c].is_number()) continue;
      tb.scalar("per_class_iou/" + class_names_[c], iou[c].get<double>(), step);
      table += fmt::format("| {} | {:.1f} |\n", class_names_[c], 100 * iou[c].get<double>());
    }
    tb.text("per_class_iou", table, step);
    if (grid.png.empty()) return;
    fs::create_directories(dir_ / "predictions");
    core::write_text_atomic((dir_ / "predictions" / fmt::format("step{}.png", step)).string(), grid.png);
    tb.image("test/input_truth_prediction", grid.png, grid.height, grid.width, 3, step);
  }

  void results(const nlohmann::json& results) override {
    core::write_text_atomic((dir_ / "results.json").string(), results.dump(2) + "\n");
    std::string csv = "step";
    for (const auto& n : class_names_) csv += "," + n;
    csv += "\n";
    for (const auto& s : results["steps"]) {
      csv += std::to_string(s["step"].get<int>());
      const auto& iou = s["test"]["per_class_iou"];
      for (size_t c = 0; c < class_names_.size(); ++c)
        csv +=
            "," + (c < iou.size() && !iou[c].is_null() ? fmt::format("{:.6f}", iou[c].get<double>()) : std::string());
      csv += "\n";
    }
    core::write_text_atomic((dir_ / "per_class_iou.csv").string(), csv);
  }

 private:
  const fs::path dir_;
  const std::string method_;
  const std::vector<std::string> class_names_;
  const std::string metrics_;
  std::unique_ptr<logging::TensorBoardWriter> tb_step_, tb_sequence_;
};

}  // namespace

std::unique_ptr<Recorder> make_run_recorder(const std::string& run_dir, const std::string& method,
                                            std::vector<std::string> class_names) {
  return std::make_unique<RunFolderRecorder>(run_dir, method, std::move(class_names));
}

}  // namespace cseg::engine
