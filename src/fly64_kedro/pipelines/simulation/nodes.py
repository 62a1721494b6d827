"""Simulation nodes: thin wrappers of ``fly64_kedro.physics`` that build NPZ payloads."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from fly64_kedro.parameters import GroundTruthParams, ScanParams, StudyDesign
from fly64_kedro.physics.forward import (
    extract_patches,
    intensity_scale_for_dose,
    noiseless_intensity,
    poisson_counts,
)
from fly64_kedro.physics.ground_truth import measure_probe_diameter, synthesize_object, synthesize_probe
from fly64_kedro.physics.scan import random_positions, raster_positions, spatial_split_masks
from fly64_kedro.physics.seeds import derive_seed
from fly64_kedro.provenance import LOADED_FROM_KEY, add_stage
from fly64_kedro.validation import validate_ground_truth

logger = logging.getLogger(__name__)


def synthesize_ground_truth(ground_truth: GroundTruthParams, study: StudyDesign) -> dict[str, Any]:
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
    return {"objectGuess": obj, "probeGuess": probe, "_metadata": metadata}


def import_ground_truth(user_ground_truth: dict[str, Any], study: StudyDesign) -> dict[str, Any]:
    """The user's own object (H, W) and probe (N, N), complex64, validated once as the study's ground truth.

    Reads the ``user_ground_truth`` catalog entry (``ground_truth.source: catalog``); the file
    it came from is recorded in the provenance.
    """
    obj, probe = validate_ground_truth(user_ground_truth, study.patch_size, "user_ground_truth")
    metadata = add_stage(user_ground_truth.get("_metadata"), "ground_truth", {
        "source": "user file (catalog entry user_ground_truth)",
        "object_shape": list(obj.shape),
    })
    return {"objectGuess": obj, "probeGuess": probe, "_metadata": metadata}


def prepare_probe(ground_truth: dict[str, Any], study: StudyDesign) -> dict[str, Any]:
    """The known probe given to every method, with its measured diameter (px)."""
    _, probe = validate_ground_truth(ground_truth, study.patch_size)
    diameter = measure_probe_diameter(probe)
    logger.info("probe %d×%d, measured diameter %.1f px (1 − 1/e² energy)", *probe.shape, diameter)
    metadata = add_stage(ground_truth.get("_metadata"), "probe", {
        "N": study.patch_size,
        "probe_diameter_px": diameter,
        "probe_diameter_definition": "diameter of the disc about the intensity centroid holding 1 - 1/e^2 of the energy",
    })
    return {"probeGuess": probe, "_metadata": metadata}


def draw_scan_positions(ground_truth: dict[str, Any], study: StudyDesign, scan: ScanParams) -> dict[str, Any]:
    """Scan positions (n,) float64 in object pixels, integer-valued, inside the object minus N/2.

    Positions are whole pixels so that the forward model needs no interpolation: both
    methods then see data that their own forward models can explain exactly.
    """
    obj, _ = validate_ground_truth(ground_truth, study.patch_size)
    seed = derive_seed(study.root_seed, "scan")
    rng = np.random.default_rng(seed)
    if scan.pattern == "random":
        y, x = random_positions(obj.shape, study.patch_size, scan.n_positions, rng)
    else:
        y, x = raster_positions(obj.shape, study.patch_size, scan.n_positions, scan.jitter_px, rng)
    metadata = add_stage(None, "scan", {
        "pattern": scan.pattern,
        "n_positions": int(y.size),
        "seed": seed,
        "object_shape": list(obj.shape),
        "border_px": study.patch_size // 2,
        "N": study.patch_size,
    })
    return {"ycoords": y, "xcoords": x, "scan_index": np.arange(y.size), "_metadata": metadata}


def extract_truth_patches(ground_truth: dict[str, Any], scan_positions: dict[str, Any], study: StudyDesign) -> dict[str, Any]:
    """Unilluminated true object patches ``Y`` (n, N, N) complex64 at every scan position."""
    obj, _ = validate_ground_truth(ground_truth, study.patch_size)
    patches = extract_patches(obj, scan_positions["ycoords"], scan_positions["xcoords"], study.patch_size)
    metadata = add_stage(scan_positions.get("_metadata"), "truth_patches", {"N": study.patch_size})
    return {
        "Y": patches.astype(np.complex64),
        "ycoords": scan_positions["ycoords"],
        "xcoords": scan_positions["xcoords"],
        "scan_index": scan_positions["scan_index"],
        "_metadata": metadata,
    }


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
    ground_truth: dict[str, Any],
    probe: dict[str, Any],
    scan_positions: dict[str, Any],
    study: StudyDesign,
    *,
    dose: float,
) -> dict[str, Any]:
    """Poisson-noisy far-field data at one dose.

    ``diffraction`` (n, N, N) float32 = sqrt(counts), DC centred; expected counts are
    ``intensity_scale · |fftshift(fft2(probe · patch))|²`` with the scale chosen so the
    mean total expected counts per pattern equals ``dose``.
    """
    obj, _ = validate_ground_truth(ground_truth, study.patch_size)
    probe_array = probe["probeGuess"]
    intensity = noiseless_intensity(obj, probe_array, scan_positions["ycoords"], scan_positions["xcoords"])
    scale = intensity_scale_for_dose(intensity, dose)
    intensity *= np.float32(scale)  # in place: expected counts, without a second full-size array
    seed = derive_seed(study.root_seed, "poisson", dose)
    counts = poisson_counts(intensity, np.random.default_rng(seed))
    del intensity  # freed before the statistics' temporaries: lowers the peak memory
    stats = counts_statistics(counts)
    logger.info("dose %g: %d patterns, mean total counts %.1f, %.1f%% zero pixels",
                dose, counts.shape[0], stats["mean_total_counts"], 100 * stats["zero_pixel_fraction"])
    metadata = add_stage(probe.get("_metadata"), "simulation", {
        "dose": dose,
        "dose_definition": "expected photons per diffraction pattern, averaged over the scan",
        "N": study.patch_size,
        "poisson_seed": seed,
        "intensity_scale": scale,
        "counts_statistics": stats,
        "scan": scan_positions.get("_metadata", {}).get("provenance", [{}])[-1].get("fields"),
        "scan_positions_source": scan_positions.get("_metadata", {}).get(LOADED_FROM_KEY),  # file and version read
        "forward_model": "counts ~ Poisson(intensity_scale * |fftshift(fft2(probe * patch))|^2), unnormalised FFT",
    })
    return {
        "diffraction": np.sqrt(counts, out=counts),  # float32 amplitudes, in place
        "xcoords": scan_positions["xcoords"],
        "ycoords": scan_positions["ycoords"],
        "scan_index": scan_positions["scan_index"],
        "probeGuess": probe_array,
        "intensity_scale": np.array(scale, dtype=np.float64),
        "_metadata": metadata,
    }


def split_measurements(diffraction: dict[str, Any], study: StudyDesign) -> tuple[dict[str, Any], dict[str, Any]]:
    """Spatial split along ``study.split_axis`` at the midpoint of the scanned range.

    Returns (train, test): train = coordinate < midpoint, test = coordinate ≥ midpoint.
    Per-position arrays are split; the probe and the intensity scale are copied.
    """
    axis_key = "ycoords" if study.split_axis == "y" else "xcoords"
    train_mask, test_mask, threshold = spatial_split_masks(diffraction[axis_key])
    n_positions = diffraction[axis_key].shape[0]
    outputs = []
    for split, mask in (("train", train_mask), ("test", test_mask)):
        subset = {
            key: (value[mask] if isinstance(value, np.ndarray) and value.ndim and value.shape[0] == n_positions
                  and key != "probeGuess" else value)
            for key, value in diffraction.items() if key != "_metadata"
        }
        subset["_metadata"] = add_stage(diffraction.get("_metadata"), "split", {
            "split": split,
            "split_axis": study.split_axis,
            "split_threshold_px": threshold,
            "split_rule": f"train = {study.split_axis} < threshold, test = {study.split_axis} >= threshold; "
                          "threshold = min + (max - min)/2 of the scanned range",
            "n_positions": int(mask.sum()),
        })
        outputs.append(subset)
    return outputs[0], outputs[1]
