#pragma once
/// Indoor datasets of the domain-incremental (ASL) setting, all in the NYU-40 label space
/// (label_spaces.h "nyu40": ids 1..40 as published; unlabelled pixels become 255, so channel 0
/// is never a target). Each reads its own published on-disk format, described at its reader
/// below. Every one offers depth (load_depth, metres).
#include <memory>
#include <string>

#include "cseg/data/dataset.h"
#include "cseg/data/options.h"

namespace cseg::data {

/// NYUv2, either
///  - the labelled MATLAB v7.3 file: ROOT/nyu_depth_v2_labeled.mat (or ROOT is that file), read
///    one frame at a time through HDF5, its 894 classes mapped to NYU-40 by `mapClass` of
///    classMapping40.mat and split by `trainNdxs` / `testNdxs` (1-based) of splits.mat (MATLAB v5
///    files, beside the .mat); splits train and test;
///  - or the extracted layout ROOT/<split>/{rgb,labels_40,depth}/<name>.png (labels 0..40, 0 =
///    unlabelled; depth optional, 16-bit millimetres).
std::unique_ptr<Dataset> make_nyuv2(const DatasetOptions& cfg, const std::string& split);

/// ML-Hypersim: ROOT/<scene>/images/scene_cam_XX_final_hdf5/frame.IIII.color.hdf5 (linear HDR
/// colour, tone-mapped as the Hypersim authors do) with scene_cam_XX_geometry_hdf5/
/// frame.IIII.semantic.hdf5 (NYU-40, -1 unlabelled) and frame.IIII.depth_meters.hdf5 (distance to
/// the camera centre). Split: ROOT/metadata_images_split_scene_v1.csv (frames in the public
/// release with split_partition_name = the split); without it, every frame found (split "all").
/// dataset.scenes keeps only the scenes named.
std::unique_ptr<Dataset> make_hypersim(const DatasetOptions& cfg, const std::string& split);

/// ScanNet frames as its exporter writes them: ROOT[/scans]/<scene>/color/<i>.jpg,
/// label-filt/<i>.png (16-bit ScanNet ids, mapped to NYU-40 by the nyu40id column of
/// ROOT/scannetv2-labels.combined.tsv; 0 unannotated), depth/<i>.png (16-bit millimetres).
/// Colour is resized to the label maps' size. Split: the scenes listed in
/// ROOT/scannetv2_<split>.txt, every scene when that file is absent; dataset.scenes narrows it.
std::unique_ptr<Dataset> make_scannet(const DatasetOptions& cfg, const std::string& split);

}  // namespace cseg::data
