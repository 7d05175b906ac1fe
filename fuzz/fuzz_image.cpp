// The image, label, depth and flow readers on arbitrary bytes. The first byte picks the reader,
// so one corpus (PNG, JPEG, BMP and .flo files of the tests) drives all four.
#include <opencv2/core.hpp>

#include "cseg/data/image_io.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const int reader = data[0] % 4;
  const std::string path = cseg::fuzz::write_input(data + 1, size - 1, "input.img");
  cseg::fuzz::expect_clean_error([&] {
    cv::Mat m;
    switch (reader) {
      case 0: m = cseg::data::read_rgb(path); break;
      case 1: m = cseg::data::read_label_png(path); break;
      case 2: m = cseg::data::read_depth_png(path); break;
      default: m = cseg::data::read_flo(path); break;
    }
    (void)cv::sum(m);  // touch every pixel
  });
  return 0;
}
