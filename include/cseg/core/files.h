#pragma once
/// Small file helpers. Every file cseg writes that a rerun depends on is written atomically:
/// to a temporary name in the same folder, then renamed over the target.
#include <string>

namespace cseg::core {

void write_text_atomic(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);
void append_line(const std::string& path, const std::string& line);

}  // namespace cseg::core
