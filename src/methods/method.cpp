#include "cseg/methods/method.h"

#include <functional>

#include "cseg/core/error.h"
#include "cseg/losses/losses.h"

namespace cseg::methods {

torch::Tensor Method::task_loss(StepContext& ctx, const Batch& batch, const torch::Tensor& logits) {
  return losses::segmentation_loss(ctx.config->loss, logits, batch.labels);
}

namespace {
struct Entry {
  const char* name;
  std::function<std::unique_ptr<Method>()> make;
};
const std::vector<Entry>& registry() {
  static const std::vector<Entry> table{
      {"finetune", [] { return std::make_unique<FineTune>(); }},
      {"joint", [] { return std::make_unique<Joint>(); }},
  };
  return table;
}
}  // namespace

std::unique_ptr<Method> make_method(const std::string& name) {
  for (const auto& e : registry())
    if (name == e.name) return e.make();
  fail("unknown method '{}'; known: {}", name, fmt::join(method_names(), ", "));
}

std::vector<std::string> method_names() {
  std::vector<std::string> n;
  for (const auto& e : registry()) n.push_back(e.name);
  return n;
}

}  // namespace cseg::methods
