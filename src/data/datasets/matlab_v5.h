#pragma once
/// Reading numeric variables from MATLAB v5 .mat files (NYUv2's classMapping40.mat and splits.mat)
/// with cseg's own bounded reader (libmatio allocated and filled what a crafted file's header
/// claimed: docs/untrusted_files.md), kept out of public headers. NYUv2's large labelled file is
/// MATLAB v7.3, which is HDF5 (hdf5_file.h).
#include <string>
#include <vector>

namespace cseg::data::matlab {

/// Variable `variable` of the v5 file `path` (double, single, uint8, uint16 or int32; real) as
/// doubles in MATLAB's column-major order. Throws naming the file and the variable when either is
/// missing or the variable is another type, or when its dimensions claim more elements than its
/// data holds.
std::vector<double> read_numbers(const std::string& path, const std::string& variable);

}  // namespace cseg::data::matlab
