// The HDF5 reader behind NYUv2's v7.3 .mat and ML-Hypersim's frames on arbitrary bytes: the
// datasets' names, whole reads and one-frame reads in each type cseg uses.
#include "../src/data/datasets/hdf5_file.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cseg::fuzz::write_input(data, size, "input.h5");
  cseg::fuzz::expect_clean_error([&] {
    cseg::data::hdf5::File file(path);
    for (const char* name : {"dataset", "images", "labels", "depths"}) {
      cseg::fuzz::expect_clean_error([&] {
        (void)file.dims(name);
        (void)file.read<float>(name);
        (void)file.read<int32_t>(name);
        (void)file.read_slab<uint8_t>(name, 0);
        (void)file.read_slab<uint16_t>(name, 0);
      });
    }
  });
  return 0;
}
