"""The evaluation report as plain text (report.txt and the CLI output)."""

from __future__ import annotations

KIND_TEXT = {
    "instances": "expert instance labels, scored as foreground/background; objects are the expert instances",
    "binary": "binary expert masks; objects are connected components",
    "classes": "class-index expert masks; objects are connected components of each class",
}


def _f(value) -> str:
    return "   n/a" if value is None else f"{value:6.3f}"


def format_report(report: dict) -> str:
    """Readable text of a report dict built by :func:`evaluation.report.run_evaluate`."""
    lines = [f"Evaluated {report['images']} predicted masks in {report['prediction_folder']} against "
             f"{report['truth_folder']} ({KIND_TEXT[report['truth_kind']]})."]
    skipped_p, skipped_t = report["skipped_predictions"], report["skipped_truths"]
    if skipped_p or skipped_t:
        lines[0] += (f" Skipped {len(skipped_p)} predictions without an expert mask and "
                     f"{len(skipped_t)} expert masks without a prediction.")
    if report.get("cancelled"):
        lines[0] += " Cancelled: the scores cover the images done so far."
    objects = report["objects"]
    headline = []
    if report["mean_foreground_iou"] is not None:
        headline.append(f"mean foreground IoU per image {report['mean_foreground_iou']:.3f}, "
                        f"mean Dice {report['mean_foreground_dice']:.3f}")
    for name, obj in objects.items():
        headline.append(f"object F1@{obj['thresh']:.1f} ({name}) {obj['f1']:.3f}")
    if headline:
        text = "; ".join(headline)
        lines[0] += " " + text[0].upper() + text[1:] + "."
    if report.get("sizes"):
        from evaluation.sizes import summary_text

        lines[0] += " " + summary_text(report["sizes"]) + "."
    names = report["classes"]
    width = max(12, *(len(n) + 2 for n in names))
    lines += ["", "Per-class pixel scores",
              f"{'class':<{width}}{'precision':>10}{'recall':>10}{'F1':>10}{'IoU':>10}{'pixels':>14}"]
    for name in names:
        s = report["pixel"]["per_class"][name]
        lines.append(f"{name:<{width}}{_f(s['precision']):>10}{_f(s['recall']):>10}{_f(s['f1']):>10}"
                     f"{_f(s['iou']):>10}{s['support']:>14}")
    lines += ["", "Confusion matrix (pixels; rows: expert class, columns: predicted class)",
              " " * width + "".join(f"{n[:11]:>12}" for n in names)]
    for name, row in zip(names, report["pixel"]["confusion"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>12}" for v in row))
    lines += ["", f"Objects matched at IoU >= {report['match_threshold']} (pooled over images)",
              f"{'class':<{width}}{'F1':>8}{'precision':>10}{'recall':>8}{'TP':>8}{'FP':>8}{'FN':>8}"
              f"{'mean IoU':>10}"]
    for name, o in objects.items():
        lines.append(f"{name:<{width}}{o['f1']:8.3f}{o['precision']:10.3f}{o['recall']:8.3f}{o['tp']:8d}"
                     f"{o['fp']:8d}{o['fn']:8d}{o['mean_matched_iou']:10.3f}")
    if report["per_image"]:
        sized = "count" in report["per_image"][0]
        lines += ["", "Foreground per image" + (", with the object count and D50 (px) against the expert's" if sized
                                                 else ""),
                  f"{'image':<30}{'IoU':>8}{'Dice':>8}" + (f"{'count':>8}{'expert':>8}{'D50':>8}{'expert':>8}"
                                                           if sized else "")]
        for row in report["per_image"]:
            line = f"{row['image'][:29]:<30}{_f(row['foreground_iou']):>8}{_f(row['foreground_dice']):>8}"
            if sized:
                line += (f"{row['count']:>8}{row['expert_count']:>8}"
                         + "".join("     n/a" if row[k] is None else f"{row[k]:8.1f}" for k in ("d50_px", "expert_d50_px")))
            lines.append(line)
    return "\n".join(lines)
