"""Simulation nodes: thin wrappers of ``fly64_kedro.physics`` that build NPZ payloads."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fly64_kedro.contracts import (
    GroundTruth,
    Measurements,
    Probe,
    ScanPositions,
    TruthPatches,
)
from fly64_kedro.parameters import GroundTruthParams, ScanParams, StudyDesign
from fly64_kedro.parameters.study import USER_GROUND_TRUTH, Cell
from fly64_kedro.physics.forward import (
    extract_patches,
    intensity_scale_for_dose,
    noiseless_intensity,
    poisson_counts,
)
from fly64_kedro.physics.ground_truth import (
    measure_probe_diameter,
    synthesize_object,
    synthesize_probe,
)
from fly64_kedro.physics.scan import (
    random_positions,
    raster_positions,
    spatial_split_masks,
)
from fly64_kedro.physics.seeds import derive_seed
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage

logger = logging.getLogger(__name__)


def synthesize_ground_truth(ground_truth: GroundTruthParams, study: StudyDesign) -> GroundTruth:
    """The embedded default: Siemens-star object (H, W) and probe (N, N), complex64."""
    obj_params, probe_params = ground_truth.object, ground_truth.probe
    seed = derive_seed(study.root_seed, "ground_truth")
    obj = synthesize_object(
        size=obj_params.size,
        n_spokes=obj_params.n_spokes,
        radius_fraction=obj_params.radius_fraction,
        amplitude_range=obj_params.amplitude_range,
        phase_range_rad=obj_params.phase_range_rad,
        texture_amplitude=obj_params.texture_amplitude,
        texture_phase_rad=obj_params.texture_phase_rad,
        texture_correlation_px=obj_params.texture_correlation_px,
        seed=seed,
    )
    probe = synthesize_probe(
        study.patch_size,
        probe_params.pupil_radius_fraction,
        probe_params.defocus_diameter_fraction * study.patch_size,
    )
    metadata = add_stage(None, "ground_truth", {
        "source": "synthetic (embedded Siemens star and defocused zone-plate probe)",
        "object_parameters": obj_params.model_dump(mode="json"),
        "probe_parameters": probe_params.model_dump(mode="json"),
        "seed": seed,
    })
    return GroundTruth(obj, probe, metadata).checked_for(study.patch_size, "ground_truth")


def import_ground_truth(user_ground_truth: dict[str, Any], study: StudyDesign) -> GroundTruth:
    """The user's own object (H, W) and probe (N, N), complex64, checked once as the study's ground truth.

    Reads the ``user_ground_truth`` catalog entry (``ground_truth.source: catalog``); the file
    it came from is recorded in the provenance.
    """
    truth = GroundTruth.from_payload(user_ground_truth, USER_GROUND_TRUTH).checked_for(study.patch_size,
                                                                                       USER_GROUND_TRUTH)
    truth.metadata = add_stage(truth.metadata, "ground_truth", {
        "source": "user file (catalog entry user_ground_truth)",
        "object_shape": list(truth.obj.shape),
    })
    return truth


def prepare_probe(ground_truth: GroundTruth) -> Probe:
    """The known probe given to every method, with its measured diameter (px)."""
    diameter = measure_probe_diameter(ground_truth.probe)
    logger.info("probe %d×%d, measured diameter %.1f px (1 − 1/e² energy)", *ground_truth.probe.shape, diameter)
    metadata = add_stage(ground_truth.metadata, "probe", {
        "N": int(ground_truth.probe.shape[0]),
        "probe_diameter_px": diameter,
        "probe_diameter_definition": "diameter of the disc about the intensity centroid holding 1 - 1/e^2 of the energy",
    })
    return Probe(ground_truth.probe, diameter, metadata)


def draw_scan_positions(ground_truth: GroundTruth, study: StudyDesign, scan: ScanParams) -> ScanPositions:
    """Scan positions (n,) float64 in object pixels, integer-valued, inside the object minus N/2.

    Positions are whole pixels so that the forward model needs no interpolation: both
    methods then see data that their own forward models can explain exactly.
    """
    seed = derive_seed(study.root_seed, "scan")
    rng = np.random.default_rng(seed)
    shape = ground_truth.obj.shape
    if scan.pattern == "random":
        y, x = random_positions(shape, study.patch_size, scan.n_positions, rng)
    else:
        y, x = raster_positions(shape, study.patch_size, scan.n_positions, scan.jitter_px, rng)
    metadata = add_stage(None, "scan", {
        "pattern": scan.pattern,
        "n_positions": int(y.size),
        "seed": seed,
        "object_shape": list(shape),
        "border_px": study.patch_size // 2,
        "N": study.patch_size,
    })
    return ScanPositions(y, x, np.arange(y.size), metadata)


def extract_truth_patches(ground_truth: GroundTruth, scan_positions: ScanPositions, study: StudyDesign) -> TruthPatches:
    """Unilluminated true object patches ``Y`` (n, N, N) complex64 at every scan position."""
    patches = extract_patches(ground_truth.obj, scan_positions.ycoords, scan_positions.xcoords, study.patch_size)
    metadata = add_stage(scan_positions.metadata, "truth_patches", {"N": study.patch_size})
    return TruthPatches(patches.astype(np.complex64), scan_positions.ycoords, scan_positions.xcoords,
                        scan_positions.scan_index, metadata)


def counts_statistics(counts: np.ndarray) -> dict[str, float]:
    """Summary of photon counts (n, N, N): totals per pattern and per-pixel occupancy."""
    totals = counts.sum(axis=(-2, -1), dtype=np.float64)
    return {
        "mean_total_counts": float(totals.mean()),
        "min_total_counts": float(totals.min()),
        "max_total_counts": float(totals.max()),
        "mean_counts_per_pixel": float(counts.mean(dtype=np.float64)),
        "max_counts_per_pixel": float(counts.max()),
        "zero_pixel_fraction": float((counts == 0).mean()),
    }


def simulate_diffraction(
    ground_truth: GroundTruth,
    probe: Probe,
    scan_positions: ScanPositions,
    study: StudyDesign,
    *,
    cell: Cell,
) -> Measurements:
    """Poisson-noisy far-field data at the cell's dose.

    ``diffraction`` (n, N, N) float32 = sqrt(counts), DC centred; expected counts are
    ``intensity_scale · |fftshift(fft2(probe · patch))|²`` with the scale chosen so the
    mean total expected counts per pattern equals the dose.
    """
    dose = cell.dose
    intensity = noiseless_intensity(ground_truth.obj, probe.probe, scan_positions.ycoords, scan_positions.xcoords)
    scale = intensity_scale_for_dose(intensity, dose)
    intensity *= np.float32(scale)  # in place: expected counts, without a second full-size array
    seed = derive_seed(study.root_seed, "poisson", dose)
    counts = poisson_counts(intensity, np.random.default_rng(seed))
    del intensity  # freed before the statistics' temporaries: lowers the peak memory
    stats = counts_statistics(counts)
    logger.info("dose %g: %d patterns, mean total counts %.1f, %.1f%% zero pixels",
                dose, counts.shape[0], stats["mean_total_counts"], 100 * stats["zero_pixel_fraction"])
    metadata = add_stage(probe.metadata, "simulation", {
        "dose": dose,
        "dose_definition": "expected photons per diffraction pattern, averaged over the scan",
        "N": study.patch_size,
        "poisson_seed": seed,
        "intensity_scale": scale,
        "counts_statistics": stats,
        "scan": scan_positions.metadata.get("provenance", [{}])[-1].get("fields"),
        "scan_positions_source": scan_positions.metadata.get(LOADED_FROM_KEY),  # file and version read
        "forward_model": "counts ~ Poisson(intensity_scale * |fftshift(fft2(probe * patch))|^2), unnormalised FFT",
    })
    return Measurements(np.sqrt(counts, out=counts), scan_positions.ycoords, scan_positions.xcoords,
                        scan_positions.scan_index, probe.probe, scale, metadata)


def split_measurements(diffraction: Measurements, study: StudyDesign) -> tuple[Measurements, Measurements]:
    """Spatial split along ``study.split_axis`` at the midpoint of the scanned range.

    Returns (train, test): train = coordinate < midpoint, test = coordinate ≥ midpoint.
    Per-position arrays are split; the probe and the intensity scale are copied.
    """
    coordinate = diffraction.ycoords if study.split_axis == "y" else diffraction.xcoords
    train_mask, test_mask, threshold = spatial_split_masks(coordinate)
    outputs = []
    for split, mask in (("train", train_mask), ("test", test_mask)):
        metadata = add_stage(diffraction.metadata, "split", {
            "split": split,
            "split_axis": study.split_axis,
            "split_threshold_px": threshold,
            "split_rule": f"train = {study.split_axis} < threshold, test = {study.split_axis} >= threshold; "
                          "threshold = min + (max - min)/2 of the scanned range",
            "n_positions": int(mask.sum()),
        })
        outputs.append(diffraction.subset(mask, metadata))
    return outputs[0], outputs[1]
