// The MATLAB v5 reader behind NYUv2's classMapping40.mat and splits.mat on arbitrary bytes.
#include "../src/data/datasets/matlab_v5.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cseg::fuzz::write_input(data, size, "input.mat");
  for (const char* variable : {"mapClass", "trainNdxs", "testNdxs"})
    cseg::fuzz::expect_clean_error([&] { (void)cseg::data::matlab::read_numbers(path, variable); });
  return 0;
}
