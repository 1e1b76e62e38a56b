"""Per-object measurements and what is written of them: the calibration
(pixel size and unit), object rows and photo summaries, the CSV tables,
label images, overlays, ImageJ ROIs, GeoJSON, COCO and the size histogram,
and the reader that opens a results folder in napari."""

from core.lazy import attach

__getattr__, __dir__, __all__ = attach(__name__, {
    "measurement.calibration": ["Calibration", "calibration_from_pixel_size", "calibration_from_scale_bar",
                                "load_calibration", "save_calibration", "calibration_from_file"],
    "measurement.measure": ["measure_objects", "summarise_image", "summarise_folder", "size_statistics"],
    "measurement.exports": ["FORMATS", "parse_formats", "write_measurements", "MeasurementCollector",
                            "PhotoMeasurement", "FolderMeasurement"],
    "measurement.overlay": ["draw_overlay"],
    "measurement.interop": ["write_roi_zip", "write_geojson", "write_calibrated_labels"],
    "measurement.measure_plot": ["plot_size_histogram"],
})
