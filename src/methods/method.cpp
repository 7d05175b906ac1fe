#include "cseg/methods/method.h"

#include <functional>

#include "cseg/core/error.h"
#include "cseg/losses/losses.h"
#include "cseg/methods/bacs.h"
#include "cseg/methods/cotta.h"
#include "cseg/methods/dft.h"
#include "cseg/methods/distillation.h"
#include "cseg/methods/dkd.h"
#include "cseg/methods/regularizers.h"
#include "cseg/methods/rehearsal.h"
#include "cseg/methods/sdr.h"
#include "cseg/methods/ssul.h"
#include "cseg/methods/tent.h"

namespace cseg::methods {

torch::Tensor Method::task_loss(StepContext& ctx, const Batch& batch, const models::ModelOutput& out) {
  return losses::segmentation_loss(ctx.config->loss, out.logits, batch.labels);
}

namespace {
using Regularizer = ParameterRegularizer::Kind;
struct Entry {
  const char* name;
  std::function<std::unique_ptr<Method>(Options)> make;
  /// Also meaningful when steps are environments over one label space (no new classes, no
  /// background shift); the others are built around new classes arriving.
  bool domain_incremental = false;
};
template <typename M>
std::unique_ptr<Method> plain(Options o) {
  o.finish();  // no options
  return std::make_unique<M>();
}
const std::vector<Entry>& registry() {
  static const std::vector<Entry> table{
      {"finetune", plain<FineTune>, true},
      {"joint", plain<Joint>, true},
      {"dft_star", [](Options o) { return std::make_unique<DFTStar>(std::move(o)); }},
      {"lwf", [](Options o) { return std::make_unique<LwF>(std::move(o)); }, true},
      {"lwf_mc", [](Options o) { return std::make_unique<LwFMC>(std::move(o)); }},
      {"ilt", [](Options o) { return std::make_unique<ILT>(std::move(o)); }},
      {"ewc", [](Options o) { return std::make_unique<ParameterRegularizer>(Regularizer::EWC, std::move(o)); }, true},
      {"pi", [](Options o) { return std::make_unique<ParameterRegularizer>(Regularizer::PI, std::move(o)); }, true},
      {"rw", [](Options o) { return std::make_unique<ParameterRegularizer>(Regularizer::RW, std::move(o)); }, true},
      {"mib", [](Options o) { return std::make_unique<MiB>(std::move(o)); }},
      {"plop", [](Options o) { return std::make_unique<PLOP>(std::move(o)); }},
      {"sdr", [](Options o) { return std::make_unique<SDR>(std::move(o)); }},
      {"ssul", [](Options o) { return std::make_unique<SSUL>(std::move(o)); }},
      {"ssul-m", [](Options o) { return std::make_unique<SSUL>(std::move(o), 100); }},
      {"bacs", [](Options o) { return std::make_unique<BACS>(std::move(o)); }},
      {"dkd", [](Options o) { return std::make_unique<DKD>(std::move(o)); }},
      {"tent", [](Options o) { return std::make_unique<Tent>(std::move(o)); }, true},
      {"cotta", [](Options o) { return std::make_unique<CoTTA>(std::move(o)); }, true},
      {"replay", [](Options o) { return std::make_unique<Rehearsal>(Rehearsal::Kind::Replay, std::move(o)); }, true},
      {"der", [](Options o) { return std::make_unique<Rehearsal>(Rehearsal::Kind::DER, std::move(o)); }, true},
      {"der++", [](Options o) { return std::make_unique<Rehearsal>(Rehearsal::Kind::DERpp, std::move(o)); }, true},
      {"latent_replay", [](Options o) { return std::make_unique<Rehearsal>(Rehearsal::Kind::Latent, std::move(o)); },
       true},
  };
  return table;
}
}  // namespace

std::unique_ptr<Method> make_method(const std::string& name, const std::map<std::string, std::string>& options) {
  for (const auto& e : registry())
    if (name == e.name) return e.make(Options(name, options));
  fail("unknown method '{}'; known: {}", name, fmt::join(method_names(), ", "));
}

std::vector<std::string> domain_method_names() {
  std::vector<std::string> n;
  for (const auto& e : registry())
    if (e.domain_incremental) n.push_back(e.name);
  return n;
}

std::vector<std::string> method_names() {
  std::vector<std::string> n;
  for (const auto& e : registry()) n.push_back(e.name);
  return n;
}

}  // namespace cseg::methods
