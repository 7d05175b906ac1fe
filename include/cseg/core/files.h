#pragma once
/// Small file helpers. Every file cseg writes that a rerun depends on is written atomically:
/// to a temporary name in the same folder, then renamed over the target.
#include <string>

namespace cseg::core {

void write_text_atomic(const std::string& path, const std::string& text);
/// A temporary name beside `path`, unique per process and thread (`<path>.tmp.<pid>.<tid>`), so
/// processes writing the same file at once (a shared cache) never rename each other's file.
std::string temp_path_for(const std::string& path);
std::string read_text(const std::string& path);
void append_line(const std::string& path, const std::string& line);

}  // namespace cseg::core
