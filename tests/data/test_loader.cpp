#include <gtest/gtest.h>

#include "cseg/data/datasets.h"
#include "cseg/data/loader.h"
#include "fixtures.h"

using namespace cseg;

namespace {
struct Tree {
  test::TempDir dir;
  std::unique_ptr<data::Dataset> ds;
  Tree(int n, int w, int h) {
    std::vector<cv::Mat> masks;
    for (int i = 0; i < n; ++i) masks.push_back(test::label_map(w, h, {{1 + i % 2, i % 5, 2, 6, 5}}));
    test::write_folder_dataset(dir.path(), "train", masks, "s");
    data::DatasetOptions c;
    c.name = "folder";
    c.root = dir.str();
    c.num_classes = 3;
    ds = data::make_dataset(c, "train");
  }
};

data::LoaderOptions train_opts(uint64_t seed, int workers) {
  data::LoaderOptions o;
  o.batch_size = 3;
  o.train = true;
  o.workers = workers;
  o.seed = seed;
  o.augment.crop_size = 16;
  o.augment.scale_min = 0.5;
  o.augment.scale_max = 1.5;
  o.lut = data::identity_lut();
  return o;
}

std::vector<Batch> epoch(data::Loader& l, int e) {
  l.start_epoch(e);
  std::vector<Batch> out;
  while (auto b = l.next()) out.push_back(*b);
  return out;
}
}  // namespace

TEST(Loader, DeterministicForASeedWhateverTheWorkers) {
  Tree t(10, 20, 14);
  std::vector<size_t> all(10);
  std::iota(all.begin(), all.end(), 0);
  data::Loader a(*t.ds, all, train_opts(7, 0)), b(*t.ds, all, train_opts(7, 2)), c(*t.ds, all, train_opts(8, 2));
  auto ea = epoch(a, 1), eb = epoch(b, 1), ec = epoch(c, 1);
  ASSERT_EQ(ea.size(), 3u);  // 10 images, batches of 3, last partial batch dropped
  bool differs = false;
  for (size_t i = 0; i < ea.size(); ++i) {
    EXPECT_TRUE(torch::equal(ea[i].images, eb[i].images));
    EXPECT_TRUE(torch::equal(ea[i].labels, eb[i].labels));
    EXPECT_EQ(ea[i].ids, eb[i].ids);
    differs = differs || !torch::equal(ea[i].images, ec[i].images);
  }
  EXPECT_TRUE(differs) << "another seed should give other crops or order";
  EXPECT_EQ(ea[0].images.sizes(), (std::vector<int64_t>{3, 3, 16, 16}));
  // Another epoch reshuffles.
  auto ea2 = epoch(a, 2);
  std::vector<std::string> o1, o2;
  for (auto& x : ea) o1.insert(o1.end(), x.ids.begin(), x.ids.end());
  for (auto& x : ea2) o2.insert(o2.end(), x.ids.begin(), x.ids.end());
  EXPECT_NE(o1, o2);
}

TEST(Loader, CropsArePaddedWithIgnoreAndLabelsRemapped) {
  Tree t(2, 8, 8);  // smaller than the 16 px crop at any scale <= 1.5
  auto o = train_opts(1, 1);
  o.augment.scale_min = o.augment.scale_max = 1.0;
  o.augment.hflip = false;
  o.lut = data::identity_lut();
  o.lut[1] = 2;
  o.lut[2] = 0;
  o.batch_size = 2;
  data::Loader l(*t.ds, {0, 1}, o);
  auto b = epoch(l, 0);
  ASSERT_EQ(b.size(), 1u);
  auto labels = b[0].labels;
  EXPECT_EQ(labels.size(1), 16);
  // The 8x8 image sits at the crop's top-left; the rest is padding = 255.
  EXPECT_EQ(labels.index({torch::indexing::Slice(), torch::indexing::Slice(8, 16)}).eq(255).all().item<bool>(), true);
  for (int i = 0; i < 2; ++i) {
    auto inside = labels[i].index({torch::indexing::Slice(0, 8), torch::indexing::Slice(0, 8)});
    EXPECT_EQ(inside.eq(255).sum().item<int64_t>(), 0);
    EXPECT_EQ(inside.eq(1).sum().item<int64_t>(), 0);  // label 1 was remapped to 2
  }
}

TEST(Loader, EvaluationKeepsFullResolutionAndOrder) {
  Tree t(5, 12, 10);
  data::LoaderOptions o;
  o.train = false;
  o.batch_size = 2;
  o.workers = 2;
  o.lut = data::identity_lut();
  data::Loader l(*t.ds, {4, 3, 2, 1, 0}, o);
  auto b = epoch(l, 0);
  ASSERT_EQ(b.size(), 3u);  // the partial batch is kept
  EXPECT_EQ(b[0].ids, (std::vector<std::string>{"s4", "s3"}));
  EXPECT_EQ(b[2].images.sizes(), (std::vector<int64_t>{1, 3, 10, 12}));
}

TEST(Loader, WorkerErrorsReachTheConsumer) {
  Tree t(4, 12, 10);
  std::filesystem::remove(t.dir / "images/s2.jpg");
  auto o = train_opts(0, 2);
  o.train = false;
  o.batch_size = 1;
  data::Loader l(*t.ds, {0, 1, 2, 3}, o);
  l.start_epoch(0);
  test::expect_error(
      [&] {
        while (l.next()) {
        }
      },
      {"s2.jpg", "does not exist"});
}
