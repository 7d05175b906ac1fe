// The experiment file reader (YAML, `_base_` composition, `${name}` references, typed reads) on
// arbitrary text: every key of every top-level section is read as each type a config asks for.
#include "cseg/config/config.h"
#include "fuzz_input.h"

using cseg::fuzz::expect_clean_error;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = cseg::fuzz::write_input(data, size, "experiment.yaml");
  expect_clean_error([&] {
    auto tree = cseg::config::load({path, {"train.lr=0.5"}, ""});
    (void)tree.dump();
    auto root = tree.root();
    for (const auto& name : root.keys()) {
      expect_clean_error([&] {
        auto section = root.section(name);
        for (const auto& key : section.keys()) {
          (void)section.where(key);
          // Each type the config's readers take; a value of another type is an error.
          auto read_as = [&](auto v) { expect_clean_error([&] { section.read(key, v); }); };
          read_as(bool{});
          read_as(int64_t{});
          read_as(uint64_t{});
          read_as(double{});
          read_as(std::string{});
          expect_clean_error([&] {
            std::string v;
            section.read_joined(key, v);
          });
          read_as(std::vector<std::string>{});
          read_as(std::vector<std::vector<int>>{});
          expect_clean_error([&] { (void)section.section(key).keys(); });
        }
        section.finish();
      });
    }
    root.finish();
  });
  return 0;
}
