# cseg's dependencies from a bundle (scripts/gpu_bundle.sh) instead of the system's packages: for
# a machine without Debian's -dev packages, e.g. a GPU machine with a pip PyTorch's LibTorch
# (scripts/gpu_check.sh). The bundle holds Debian 12's headers in include/ and shared libraries,
# with every library they need besides glibc and the C++ runtime, in lib/ (see its MANIFEST).
# No find_package: each target points at the bundle's files by name, so nothing of the system's
# can be picked up instead.
set(_deps "${CSEG_DEPS}")
if(NOT EXISTS "${_deps}/MANIFEST" OR NOT EXISTS "${_deps}/include/opencv4/opencv2/core.hpp")
  message(FATAL_ERROR "CSEG_DEPS=${_deps} is not a dependency bundle of scripts/gpu_bundle.sh (no MANIFEST "
                      "or include/opencv4)")
endif()
message(STATUS "dependencies: the bundle in ${_deps}")

function(cseg_bundle_shared target file)
  if(NOT EXISTS "${_deps}/lib/${file}")
    message(FATAL_ERROR "the dependency bundle ${_deps} has no lib/${file}")
  endif()
  add_library(${target} SHARED IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES IMPORTED_LOCATION "${_deps}/lib/${file}"
                                             INTERFACE_INCLUDE_DIRECTORIES "${_deps}/include")
endfunction()
function(cseg_bundle_headers target)
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_deps}/include")
endfunction()

cseg_bundle_shared(yaml-cpp libyaml-cpp.so.0.7)
cseg_bundle_shared(PNG::PNG libpng16.so.16)
cseg_bundle_shared(JPEG::JPEG libjpeg.so.62)
cseg_bundle_shared(ZLIB::ZLIB libz.so.1)
cseg_bundle_headers(CLI11::CLI11)
cseg_bundle_headers(nlohmann_json::nlohmann_json)
set(CSEG_FMT_DIR "${_deps}/fmt-include")  # apart: used only where LibTorch brings no fmt of its own

add_library(cseg_opencv INTERFACE)
target_include_directories(cseg_opencv SYSTEM INTERFACE "${_deps}/include/opencv4")
foreach(m core imgproc video)
  target_link_libraries(cseg_opencv INTERFACE "${_deps}/lib/libopencv_${m}.so.406")
endforeach()
add_library(cseg_hdf5 INTERFACE)
target_include_directories(cseg_hdf5 SYSTEM INTERFACE "${_deps}/include/hdf5/serial")
target_link_libraries(cseg_hdf5 INTERFACE "${_deps}/lib/libhdf5_serial.so.103")
add_library(cseg_matio INTERFACE)
target_include_directories(cseg_matio SYSTEM INTERFACE "${_deps}/include")
target_link_libraries(cseg_matio INTERFACE "${_deps}/lib/libmatio.so.11")

# Gloo: its headers for c10d's; the library is LibTorch 2.x's own copy inside libtorch_cpu (pass
# -DGLOO_LIBRARY=... for a LibTorch that links a separate one, as Debian's 1.13 does).
set(GLOO_INCLUDE_DIR "${_deps}/include")
if(NOT GLOO_LIBRARY)
  set(GLOO_LIBRARY "")
endif()

# The tests' GoogleTest, built by Debian as static libraries.
add_library(GTest::gtest STATIC IMPORTED GLOBAL)
set_target_properties(GTest::gtest PROPERTIES IMPORTED_LOCATION "${_deps}/lib/libgtest.a"
                                              INTERFACE_INCLUDE_DIRECTORIES "${_deps}/include"
                                              INTERFACE_LINK_LIBRARIES Threads::Threads)
add_library(GTest::gtest_main STATIC IMPORTED GLOBAL)
set_target_properties(GTest::gtest_main PROPERTIES IMPORTED_LOCATION "${_deps}/lib/libgtest_main.a"
                                                   INTERFACE_LINK_LIBRARIES GTest::gtest)

# The HTML reports' Chart.js.
set(CSEG_CHARTJS "${_deps}/share/chart.min.js" CACHE FILEPATH "Chart.js UMD build inlined into HTML reports")

# The bundle's libraries need one another (OpenCV's core needs TBB, LAPACK, ...): the linker finds
# them there, and the programs find them there at run time (an RPATH, which the loader also uses
# for the libraries' own dependencies, unlike a RUNPATH).
add_link_options("LINKER:-rpath-link,${_deps}/lib" "LINKER:-rpath,${_deps}/lib" "LINKER:--disable-new-dtags")
