#pragma once
/// Which labels each image's mask contains: what scenarios filter on. Reading every mask of a
/// large dataset takes minutes, so the index is cached in a file keyed by the dataset's
/// description, its image ids and each mask's size and modification time.
#include <bitset>
#include <string>
#include <vector>

#include "cseg/data/dataset.h"

namespace cseg::data {

using LabelSet = std::bitset<256>;

/// Reads every mask (in `threads` threads) unless `cache_dir` holds a matching index.
/// An empty cache_dir disables caching.
std::vector<LabelSet> build_class_index(const Dataset& dataset, const std::string& cache_dir, int threads);

/// Runs fn(i) for i in [0, n) on `threads` threads; rethrows the first exception.
void parallel_for(size_t n, int threads, const std::function<void(size_t)>& fn);

}  // namespace cseg::data
