#pragma once
// Replay items and batches shared by the replay-buffer and rehearsal tests.
#include <torch/torch.h>

#include "../fixtures.h"
#include "cseg/core/batch.h"
#include "cseg/methods/replay_buffer.h"

namespace cseg::test {
/// A step-1 batch of four empty 32 x 32 crops, for replay to append to.
inline Batch four_crops() {
  Batch b;
  b.images = torch::zeros({4, 3, 32, 32});
  b.labels = torch::zeros({4, 32, 32}, torch::kLong);
  b.ids = {"a", "b", "c", "d"};
  b.indices = {0, 1, 2, 3};
  return b;
}

inline methods::ReplayItem crop(int cls, double priority = 0, float embed = 0) {
  methods::ReplayItem it;
  it.image = torch::full({3, 4, 4}, float(cls));
  it.label = torch::full({4, 4}, int64_t(cls));
  it.label[0][0] = 0;
  it.priority = priority;
  it.embedding = torch::tensor({1.0f, embed});
  return it;
}

/// `into` after loading what `buffer` saved, through a checkpoint file.
inline methods::ReplayBuffer reloaded(const methods::ReplayBuffer& buffer, methods::ReplayBuffer into) {
  torch::serialize::OutputArchive out;
  buffer.save(out);
  test::TempDir d;
  out.save_to((d / "b.pt").string());
  torch::serialize::InputArchive in;
  in.load_from((d / "b.pt").string());
  into.load(in);
  return into;
}

}  // namespace cseg::test
