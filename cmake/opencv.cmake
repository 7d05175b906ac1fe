# OpenCV: cseg needs core, imgproc (resizing, colour, warping) and video (DIS optical flow) only.
# Images are read and written with libpng and libjpeg directly (data/image_codecs.h): OpenCV's
# imgcodecs would bring every codec it was built with (Debian's links GDAL, GDCM and OpenEXR,
# about 350 MB, which a GPU machine's bundle would have to carry; scripts/gpu_bundle.sh).
# Debian's split packages ship no CMake config of their own: use OpenCVConfig.cmake where
# libopencv-dev provides one, otherwise find the libraries.
find_package(OpenCV QUIET COMPONENTS core imgproc video)
add_library(cseg_opencv INTERFACE)
if(OpenCV_FOUND)
  target_include_directories(cseg_opencv INTERFACE ${OpenCV_INCLUDE_DIRS})
  target_link_libraries(cseg_opencv INTERFACE opencv_core opencv_imgproc opencv_video)
else()
  find_path(CSEG_OPENCV_INCLUDE opencv2/core.hpp PATH_SUFFIXES opencv4 REQUIRED)
  foreach(m core imgproc video)
    find_library(CSEG_OPENCV_${m} opencv_${m} REQUIRED)
    target_link_libraries(cseg_opencv INTERFACE ${CSEG_OPENCV_${m}})
  endforeach()
  target_include_directories(cseg_opencv INTERFACE ${CSEG_OPENCV_INCLUDE})
endif()
# imgcodecs, where installed, for what compares cseg's codecs with OpenCV's (a test) and the fuzz
# seeds' writer; never for the library or the program.
find_library(CSEG_OPENCV_IMGCODECS opencv_imgcodecs)
find_path(CSEG_OPENCV_IMGCODECS_INCLUDE opencv2/imgcodecs.hpp PATH_SUFFIXES opencv4)
if(CSEG_OPENCV_IMGCODECS AND CSEG_OPENCV_IMGCODECS_INCLUDE)
  add_library(cseg_opencv_imgcodecs INTERFACE)
  target_link_libraries(cseg_opencv_imgcodecs INTERFACE cseg_opencv ${CSEG_OPENCV_IMGCODECS})
endif()
