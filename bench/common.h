#pragma once
// What the benchmarks in bench/ share: key=value arguments and a training loader over every image
// of a VOC-layout folder (FMNIST-Scenes), built as `cseg train` builds its own.
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <string>

#include "cseg/config/experiment.h"
#include "cseg/data/datasets.h"
#include "cseg/data/loader.h"

namespace cseg::bench {

using Args = std::map<std::string, std::string>;

/// Overrides `defaults` with argv[first..] given as key=value; false (after naming the argument on
/// stderr) for anything else or an unknown key.
inline bool parse_args(int argc, char** argv, int first, Args& defaults) {
  for (int i = first; i < argc; ++i) {
    const std::string s = argv[i];
    const auto eq = s.find('=');
    if (eq == std::string::npos || !defaults.count(s.substr(0, eq))) {
      std::cerr << "unknown argument '" << s << "' (expected one of the key=value options in the source's header)\n";
      return false;
    }
    defaults[s.substr(0, eq)] = s.substr(eq + 1);
  }
  return true;
}

/// A shuffled, augmented training loader over all of `root`'s train split, identity labels. The
/// dataset lives as long as the loader that reads it.
struct FileLoader {
  std::unique_ptr<data::Dataset> dataset;
  std::unique_ptr<data::Loader> loader;
};

inline FileLoader train_loader(const std::string& root, const data::AugmentOptions& augment, int batch, int workers) {
  data::DatasetOptions dc;
  dc.name = "fmnist_scenes";  // the VOC layout: JPEGImages, SegmentationClass, ImageSets
  dc.root = root;
  FileLoader f;
  f.dataset = data::make_dataset(dc, "train");
  std::vector<size_t> all(f.dataset->size());
  std::iota(all.begin(), all.end(), 0);
  data::LoaderOptions lo;
  lo.batch_size = batch;
  lo.workers = workers;
  lo.augment = augment;
  lo.lut = data::identity_lut();
  f.loader = std::make_unique<data::Loader>(*f.dataset, all, lo);
  return f;
}

}  // namespace cseg::bench
