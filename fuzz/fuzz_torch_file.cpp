// The torch.save reader (zip and legacy formats, cseg's own unpickler) on arbitrary bytes:
// weight files are downloaded from the internet.
#include "cseg/weights/torch_file.h"
#include "fuzz_input.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cseg::fuzz::write_input(data, size, "input.pt");
  cseg::fuzz::expect_clean_error([&] {
    auto root = cseg::weights::read_torch_file(path);
    auto tensors = cseg::weights::find_state_dict(*root, path);
    for (auto& [name, t] : tensors) (void)t.sum().item<double>();  // touch every element
  });
  return 0;
}
