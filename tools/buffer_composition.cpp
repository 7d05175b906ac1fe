// What a replay buffer saved in a checkpoint holds, per step it came from: how many crops (or
// latent states), the share of their pixels that carry a label (pseudo-labels leave the unsure
// ones at 255), and the share of those labelled pixels that are items rather than background.
// A diagnostic for the buffer experiments of docs/domain_incremental.md, not built by default:
//   cmake --build build --target buffer_composition
//   ./build/buffer_composition runs/domain_buffer/select_uncertainty/replay_seed0/replay/checkpoints/step4.pt
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <map>

#include "cseg/methods/method.h"
#include "cseg/methods/rehearsal.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CHECKPOINT.pt [...]  (a replay or latent_replay run's checkpoints/stepK.pt)\n",
                 argv[0]);
    return 2;
  }
  for (int k = 1; k < argc; ++k) {
    if (!std::filesystem::is_regular_file(argv[k])) {
      std::fprintf(stderr, "error: checkpoint '%s' does not exist\n", argv[k]);
      return 1;
    }
    torch::serialize::InputArchive in, state;
    try {
      in.load_from(argv[k]);
    } catch (const std::exception&) {
      std::fprintf(stderr, "error: '%s' cannot be read as a cseg checkpoint\n", argv[k]);
      return 1;
    }
    if (!in.try_read("method", state)) {
      std::fprintf(stderr, "error: '%s' holds no method state (not a replay run's checkpoint?)\n", argv[k]);
      return 1;
    }
    // The buffer's stored form is the same for image and latent replay; its options do not matter here.
    auto method = cseg::methods::make_method("replay", {});
    try {
      method->load(state);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: '%s': its method state is not a replay buffer (%s)\n", argv[k], e.what());
      return 1;
    }
    const auto& buffer = static_cast<const cseg::methods::Rehearsal&>(*method).buffer();
    if (buffer.size() == 0) {
      std::fprintf(stderr, "error: '%s' holds no replay buffer (a method without one, or before it stored any)\n",
                   argv[k]);
      return 1;
    }
    struct Sums {
      int items = 0;
      double labelled = 0, foreground = 0;
    };
    std::map<int, Sums> per_step;
    for (size_t i = 0; i < buffer.size(); ++i) {
      const auto label = buffer[i].label.to(torch::kLong);
      const auto has_label = label.ne(255);
      const double labelled = has_label.sum().item<double>();
      auto& s = per_step[buffer[i].step];
      ++s.items;
      s.labelled += labelled / double(label.numel());
      s.foreground += labelled > 0 ? (has_label & label.gt(0)).sum().item<double>() / labelled : 0;
    }
    std::printf("%s: %zu stored\n", argv[k], buffer.size());
    for (const auto& [step, s] : per_step)
      std::printf("  step %d: %3d stored, labelled pixels %.3f, items among them %.3f\n", step, s.items,
                  s.labelled / s.items, s.foreground / s.items);
  }
  return 0;
}
