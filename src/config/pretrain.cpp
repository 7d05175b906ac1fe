#include "cseg/config/pretrain.h"

#include <nlohmann/json.hpp>

#include "cseg/config/config.h"
#include "cseg/core/device.h"
#include "cseg/core/error.h"
#include "sections.h"

namespace cseg::config {

namespace {

void read_data(Section s, PretrainDataConfig& c) {
  s.read_choice("source", c.source, {"fmnist", "folder"});
  s.read("root", c.root);
  s.read("image_size", c.image_size);
  s.read("held_out", c.held_out);
  s.read("mean", c.mean);
  s.read("std", c.std);
  s.read("min_scale", c.min_scale);
  s.read("max_scale", c.max_scale);
  s.read("textures", c.textures);
  s.read("scale_min", c.scale_min);
  s.read("scale_max", c.scale_max);
  s.read("hflip", c.hflip);
  s.finish();
  CSEG_CHECK(c.image_size >= 16, "config key {}: must be >= 16, got {}", s.where("image_size"), c.image_size);
  CSEG_CHECK(c.held_out > 0 && c.held_out < 1, "config key {}: must be in (0, 1), got {}", s.where("held_out"),
             c.held_out);
  CSEG_CHECK(c.mean.size() == 3 && c.std.size() == 3, "config key {}: mean and std need 3 values", s.where("mean"));
  CSEG_CHECK(c.min_scale > 0 && c.min_scale <= c.max_scale, "config key {}: need 0 < min_scale <= max_scale",
             s.where("min_scale"));
  CSEG_CHECK(c.scale_min > 0 && c.scale_min <= c.scale_max, "config key {}: need 0 < scale_min <= scale_max",
             s.where("scale_min"));
  CSEG_CHECK(!c.textures.empty(), "config key {}: list at least one texture", s.where("textures"));
  for (const auto& t : c.textures)
    CSEG_CHECK(t == "flat" || t == "gradient" || t == "blobs" || t == "stripes" || t == "checker",
               "config key {}: unknown texture '{}' (flat, gradient, blobs, stripes, checker)", s.where("textures"), t);
  CSEG_CHECK(c.source == "fmnist" || !c.root.empty(),
             "config key {}: a folder source needs its root (root/<class>/*.jpg)", s.where("root"));
}

void read_train(Section s, PretrainTrainConfig& c) {
  s.read("batch_size", c.batch_size);
  s.read("epochs", c.epochs);
  s.read("iterations", c.iterations);
  s.read("log_every", c.log_every);
  s.read("eval_every", c.eval_every);
  s.read("checkpoint_every", c.checkpoint_every);
  s.finish();
  CSEG_CHECK((c.epochs > 0) + (c.iterations > 0) == 1,
             "config section 'train': set exactly one of epochs, iterations (got epochs={}, iterations={})", c.epochs,
             c.iterations);
  CSEG_CHECK(c.batch_size > 0, "config key {}: must be > 0", s.where("batch_size"));
  CSEG_CHECK(c.log_every > 0, "config key {}: must be > 0", s.where("log_every"));
  CSEG_CHECK(c.eval_every >= 0 && c.checkpoint_every >= 0, "config key {}: must be >= 0", s.where("eval_every"));
}

}  // namespace

PretrainConfig parse_pretrain(const ConfigTree& tree) {
  PretrainConfig c;
  Section root = tree.root();
  root.read("name", c.name);
  root.read("seed", c.seed);
  root.read("threads", c.threads);
  root.read("device", c.device);
  core::parse_device(c.device);
  root.read("output_dir", c.output_dir);
  read_model(root.section("model"), c.model);
  read_data(root.section("data"), c.data);
  read_optim(root.section("optim"), c.optim);
  read_train(root.section("train"), c.train);
  root.finish();
  CSEG_CHECK(c.model.pretrained.empty() && c.model.pretrain.empty(),
             "config key 'model.pretrained': a pretraining file trains its encoder from scratch");
  if (c.output_dir.empty())
    c.output_dir = tree.env().at("output_root") + "/pretrained/" + c.name + "-" + pretrain_hash(c);
  return c;
}

std::string pretrain_hash(const PretrainConfig& c) {
  const auto& m = c.model;
  const auto& d = c.data;
  const auto& o = c.optim;
  const auto& t = c.train;
  // Every field that changes the weights, by name, so reordering the structs changes nothing.
  const nlohmann::json j = {
      {"format", 1},
      {"seed", c.seed},
      {"model",
       {{"name", m.name},
        {"norm", m.norm},
        {"backbone", m.backbone},
        {"output_stride", m.output_stride},
        {"unet_channels", m.unet_channels},
        {"unet_upsampling", m.unet_upsampling},
        {"layout", m.layout},
        {"dropout", m.dropout}}},
      {"data",
       {{"source", d.source},
        {"root", d.root},
        {"image_size", d.image_size},
        {"held_out", d.held_out},
        {"mean", d.mean},
        {"std", d.std},
        {"min_scale", d.min_scale},
        {"max_scale", d.max_scale},
        {"textures", d.textures},
        {"scale_min", d.scale_min},
        {"scale_max", d.scale_max},
        {"hflip", d.hflip}}},
      {"optim",
       {{"lr", o.lr},
        {"momentum", o.momentum},
        {"nesterov", o.nesterov},
        {"weight_decay", o.weight_decay},
        {"schedule", o.schedule},
        {"power", o.power},
        {"warmup_iters", o.warmup_iters},
        {"head_lr_mult", o.head_lr_mult}}},
      {"train", {{"batch_size", t.batch_size}, {"epochs", t.epochs}, {"iterations", t.iterations}}}};
  // FNV-1a over the canonical dump (nlohmann sorts object keys).
  uint64_t h = 1469598103934665603ull;
  for (unsigned char ch : j.dump()) h = (h ^ ch) * 1099511628211ull;
  return fmt::format("{:016x}", h);
}

}  // namespace cseg::config
