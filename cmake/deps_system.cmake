# cseg's dependencies from the system's packages (Debian 12: scripts/setup.sh installs them).
find_package(yaml-cpp REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(ZLIB REQUIRED)
set(CSEG_FMT_DIR "")
# Data-parallel training uses LibTorch's c10d (ProcessGroupGloo, TCPStore); its headers include
# Gloo's (Debian: libgloo-dev, the library Debian's LibTorch itself links).
find_path(GLOO_INCLUDE_DIR gloo/algorithm.h)
find_library(GLOO_LIBRARY gloo)
if(NOT GLOO_INCLUDE_DIR OR NOT GLOO_LIBRARY)
  message(FATAL_ERROR "Gloo headers not found: install libgloo-dev (scripts/setup.sh does)")
endif()
include(${CMAKE_CURRENT_LIST_DIR}/opencv.cmake)
# NYUv2's labelled .mat (MATLAB v7.3 = HDF5) and ML-Hypersim's frames. NYUv2's MATLAB v5
# metadata (classMapping40.mat, splits.mat) has cseg's own reader (data/datasets/matlab_v5.cpp);
# libmatio writes the tests' v5 files.
find_package(PkgConfig REQUIRED)
pkg_check_modules(HDF5 REQUIRED IMPORTED_TARGET hdf5)
pkg_check_modules(MATIO REQUIRED IMPORTED_TARGET matio)
add_library(cseg_hdf5 INTERFACE)
target_link_libraries(cseg_hdf5 INTERFACE PkgConfig::HDF5)
add_library(cseg_matio INTERFACE)
target_link_libraries(cseg_matio INTERFACE PkgConfig::MATIO)
