"""Paper figures: Raw Zero-Shot polygons, amalgam heatmaps, metrics, correlations and defences.

Every function draws in one house style and returns the matplotlib Figure: ``PAPER_STYLE``
(seaborn's colour-blind palette, DejaVu Sans at 7-9 pt, no axis offset text), figures one column
(``ONE_COLUMN_INCHES``) or two columns (``TWO_COLUMN_INCHES``) wide and at most a page
(``PAGE_HEIGHT_INCHES``) tall, laid out by matplotlib's constrained layout so no text overprints
another (the tests check it). Estimates carry their intervals, computed by ``rzs.analysis``
(the tables' functions): Wilson intervals for attack accuracies, the given bootstrap intervals
elsewhere. ``save_figure`` writes PNG and PDF with the metadata that changes from run to run
stripped, so the same data give byte-identical files; the one resampling here
(``plot_metric_vs_attack``'s band without given replicates) takes a seed.
"""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from cycler import cycler

from rzs import analysis, metrics, tables

PALETTE = sns.color_palette("colorblind")
# Colour and marker together keep up to 10 x 8 networks apart, in greyscale print too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PAPER_STYLE = {
    **sns.axes_style("ticks"),
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    # An offset ("+1e-3" at the axis end) lands on titles and annotations; ticks say it all.
    "axes.formatter.useoffset": False,
    # Type 42 embeds TrueType fonts, whose text stays selectable and editable in the PDF.
    "pdf.fonttype": 42,
}
HEATMAP_COLOURS = "viridis"
PNG_DPI = 300
# Room for a figure title and a legend beside a single panel.
MINIMUM_WIDTH_INCHES = 5.0
# Column and text widths of two-column journals and proceedings (IEEE, ACM, Springer: 3.3-3.5
# and 6.9-7.2 inches); a figure drawn at its printed size needs no scaling, so 7-9 pt stays 7-9 pt.
ONE_COLUMN_INCHES = 3.5
TWO_COLUMN_INCHES = 7.0
PAGE_HEIGHT_INCHES = 9.0
INTERVAL_COLUMNS = tables.INTERVAL_COLUMNS
ATTACK_COUNTS = tables.ATTACK_COUNTS
METRIC_LABELS = {"DBM": "Davies-Bouldin Metric (DBM)", "AM": "Amalgam Metric (AM)"}


def save_figure(figure, path_without_suffix, dpi=PNG_DPI):
    """Write ``figure`` to <path>.png and <path>.pdf, close it, and return both paths.

    dpi: resolution of the PNG (the PDF is vector). Creation dates and software versions are
    left out of the files, so identical data and library versions give byte-identical files.
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = base.with_name(base.name + ".png"), base.with_name(base.name + ".pdf")
    with plt.rc_context(PAPER_STYLE):
        figure.savefig(png, dpi=dpi, metadata={"Software": None})
        figure.savefig(pdf, metadata={"Creator": None, "Producer": None, "CreationDate": None})
    plt.close(figure)
    return png, pdf


def polygon_vertices(count):
    """Vertices of a regular polygon on the unit circle, (count, 2), the first at the top.

        v_k = (sin(2 pi k / count), cos(2 pi k / count)),  k = 0 ... count-1 (clockwise)
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ValueError(f"count must be an integer >= 1; received {count!r}")
    angles = 2 * np.pi * np.arange(count) / count
    return np.column_stack([np.sin(angles), np.cos(angles)])


def polygon_projection(soft_labels):
    """2-D view of soft labels: each row at the probability-weighted mean of the vertices.

        z_m = sum_c x_m[c] * v_c    (v: ``polygon_vertices(C)``)

    soft_labels: (M, C) probability rows. Returns (M, 2). A one-hot row lands on its class's
    vertex, the uniform row on the centre.
    """
    rows = metrics.check_soft_labels(soft_labels, "soft_labels")
    return rows @ polygon_vertices(rows.shape[1])


def plot_zero_shot_grid(soft_labels_by_class, network, class_names=None, columns=5):
    """One polygon panel per excluded class i of one network: C_-i's soft labels on class i.

    soft_labels_by_class: {i: (Q_i (M_i, N-1), P_i (M_i, N))}; only Q_i is drawn.
    class_names: N names (default: indices). columns: panels per row.
    """
    checked, num_classes = metrics.check_soft_labels_by_class(soft_labels_by_class)
    names = metrics.check_class_names(class_names, num_classes)
    panels = {
        f"excluded: {names[index]}": (zero_shot, names[:index] + names[index + 1:])
        for index, (zero_shot, _) in checked.items()
    }
    return _polygon_figure(panels, f"{network}: Raw Zero-Shot soft labels", columns)


def plot_zero_shot_networks(zero_shot_by_network, excluded, class_names=None, columns=5):
    """One polygon panel per network, all for the same excluded class i.

    zero_shot_by_network: {network: Q_i (M, N-1)}. excluded: i. class_names: N names.
    """
    if not zero_shot_by_network:
        raise ValueError("zero_shot_by_network must name at least one network; received none")
    checked = {
        network: metrics.check_soft_labels(zero_shot, f"zero_shot_by_network[{network!r}]")
        for network, zero_shot in zero_shot_by_network.items()
    }
    widths = {zero_shot.shape[1] for zero_shot in checked.values()}
    if len(widths) != 1:
        raise ValueError(
            f"every network must see the same N-1 known classes; received widths {sorted(widths)}"
        )
    num_classes = widths.pop() + 1
    names = metrics.check_class_names(class_names, num_classes)
    index = metrics.check_class_index(excluded, num_classes)
    known = names[:index] + names[index + 1:]
    panels = {network: (zero_shot, known) for network, zero_shot in checked.items()}
    return _polygon_figure(panels, f"Raw Zero-Shot soft labels, excluded: {names[index]}", columns)


def plot_raw_zero_shot_illustration(images, zero_shot_soft_labels, amalgam, known_class_names,
                                    excluded_name, network):
    """The Raw Zero-Shot illustration (the paper's Figure 1): unseen images and their soft labels.

    One row per image of the excluded class: the image, then grouped bars over the N-1 known
    classes: the leave-one-out model C_-i's soft labels (Raw Zero-Shot) beside the full model's
    amalgam proportions G_i (``metrics.amalgam_proportions``) on the same image.

    images: (K, H, W, C) uint8, C = 1 (grey) or 3 (RGB). zero_shot_soft_labels: (K, N-1)
    probability rows of C_-i on those images. amalgam: (K, N-1) amalgam proportions of the same
    images, or None to draw the Raw Zero-Shot bars alone. known_class_names: the N-1 known
    classes in column order. excluded_name: the class left out. network: name for the title.
    """
    pictures = _check_images(images)
    zero_shot = metrics.check_soft_labels(zero_shot_soft_labels, "zero_shot_soft_labels")
    if zero_shot.shape[0] != len(pictures):
        raise ValueError(
            f"zero_shot_soft_labels must have one row per image, K = {len(pictures)}; received "
            f"{zero_shot.shape[0]} rows"
        )
    if amalgam is not None:
        amalgam = metrics.check_soft_labels(amalgam, "amalgam")
        if amalgam.shape != zero_shot.shape:
            raise ValueError(
                f"amalgam must have the shape of zero_shot_soft_labels, {zero_shot.shape}; "
                f"received {amalgam.shape}"
            )
    names = [str(name) for name in known_class_names]
    if len(names) != zero_shot.shape[1]:
        raise ValueError(
            f"known_class_names must hold N-1 = {zero_shot.shape[1]} names, one per column of "
            f"zero_shot_soft_labels; received {len(names)}: {names}"
        )
    series = [(f"Raw Zero-Shot: model trained without {excluded_name}", zero_shot, PALETTE[0],
               None)]
    if amalgam is not None:
        series.append((f"amalgam proportion: full model, {excluded_name} left out", amalgam,
                       PALETTE[1], "////"))
    positions = np.arange(len(names))
    width = 0.8 / len(series)
    top = max(rows.max() for _, rows, _, _ in series)
    row_inches = 1.25
    with plt.rc_context({**PAPER_STYLE, "hatch.linewidth": 0.6}):
        figure, axes = plt.subplots(
            len(pictures), 2, squeeze=False, layout="constrained", sharex="col", sharey="col",
            width_ratios=[1, max(4.0, 0.55 * len(names))],
            figsize=(max(MINIMUM_WIDTH_INCHES, 1.6 + 0.5 * len(names)),
                     len(pictures) * row_inches + 1.1),
        )
        for row, (picture_axis, bar_axis) in enumerate(axes):
            picture = pictures[row]
            grey = picture.shape[-1] == 1
            picture_axis.imshow(picture[..., 0] if grey else picture, cmap="gray" if grey else
                                None, vmin=0, vmax=255, interpolation="nearest")
            picture_axis.set_xticks([])
            picture_axis.set_yticks([])
            for spine in picture_axis.spines.values():
                spine.set_visible(True)
                spine.set_color("0.6")
            picture_axis.set_ylabel(f"image {row + 1}", fontsize=8)
            for offset, (label, rows, colour, hatch) in enumerate(series):
                shift = (offset - (len(series) - 1) / 2) * width
                bar_axis.bar(positions + shift, rows[row], width=width, label=label,
                             color=colour if hatch is None else "white", edgecolor=colour,
                             hatch=hatch, linewidth=0.8)
            bar_axis.set_ylim(0, min(1.0, 1.1 * top) if top > 0 else 1.0)
            bar_axis.set_ylabel("probability")
            bar_axis.grid(axis="y", color="0.9", linewidth=0.6)
            bar_axis.set_axisbelow(True)
        bottom = axes[-1, 1]
        bottom.set_xticks(positions, names, rotation=30, ha="right", rotation_mode="anchor")
        bottom.set_xlabel(f"known classes (seen in training; {excluded_name} was not)")
        handles, labels = axes[0, 1].get_legend_handles_labels()
        figure.legend(handles, labels, loc="outside lower center", ncols=len(series),
                      frameon=False)
        figure.suptitle(f"{network}: Raw Zero-Shot on the unseen class {excluded_name}")
    return figure


def plot_amalgam_heatmap(matrices, class_names=None):
    """Heatmaps of class-level amalgam proportions (``metrics.class_amalgam_matrix``).

    matrices: {panel title: (N, N) matrix}, e.g. the full model's amalgam proportions beside
    the Raw Zero-Shot ones; all panels share one colour scale. Row i (excluded class) says how
    much of each known class (column) class i is "made of"; the diagonal, 0 by construction,
    is left blank.
    """
    if not matrices:
        raise ValueError("matrices must hold at least one {title: matrix}; received none")
    checked = {title: _check_square(matrix, f"matrices[{title!r}]") for title, matrix in
               matrices.items()}
    sizes = {matrix.shape[0] for matrix in checked.values()}
    if len(sizes) != 1:
        raise ValueError(f"every matrix must be N x N for one N; received sizes {sorted(sizes)}")
    num_classes = sizes.pop()
    names = metrics.check_class_names(class_names, num_classes)
    off_diagonal = ~np.eye(num_classes, dtype=bool)
    top = max(np.nanmax(matrix[off_diagonal]) for matrix in checked.values())
    # Cells must fit a two-decimal annotation; without annotations (N > 12) they can shrink.
    cell = 0.42 if num_classes <= 12 else 0.22
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, len(checked), squeeze=False, layout="constrained",
            figsize=(len(checked) * (num_classes * cell + 1.4) + 1.0, num_classes * cell + 1.4),
        )
        for axis, (title, matrix) in zip(axes[0], checked.items()):
            sns.heatmap(
                matrix, ax=axis, mask=~off_diagonal, vmin=0.0, vmax=top, cmap=HEATMAP_COLOURS,
                square=True, annot=num_classes <= 12, fmt=".2f", annot_kws={"fontsize": 6},
                xticklabels=names, yticklabels=names, linewidths=0.5, linecolor="white",
                cbar=axis is axes[0, -1], cbar_kws={"label": "proportion", "shrink": 0.8},
            )
            axis.set_title(title)
            axis.set_xlabel("known class")
            axis.set_ylabel("excluded class")
            axis.tick_params(axis="x", labelrotation=45)
            plt.setp(axis.get_xticklabels(), ha="right", rotation_mode="anchor")
            axis.tick_params(axis="y", labelrotation=0)
    return figure


def plot_metrics_per_network(table):
    """DBM and AM per network, described over excluded classes: mean, std bar and each class.

    table: ``metrics.metrics_table`` results of one or more networks, concatenated (columns
    network, dbm, am; rows of several seeds are described together); networks are rows, in the
    order of the table. The spread over classes describes the classes, not the uncertainty of
    the network's value: ``plot_metric_intervals`` draws that.
    """
    tables.check_columns(table, ("network", "dbm", "am"), "table")
    networks = list(dict.fromkeys(table["network"]))
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, 2, squeeze=False, layout="constrained", sharey=True,
            figsize=(ONE_COLUMN_INCHES, _figure_height(0.26 * len(networks) + 0.9)),
        )
        for axis, (metric, column) in zip(axes[0], (("DBM", "dbm"), ("AM", "am"))):
            _shade_alternate_rows(axis, len(networks))
            grouped = table.groupby("network", sort=False)[column]
            means, spreads = grouped.mean().loc[networks], grouped.std(ddof=1).loc[networks]
            positions = np.arange(len(networks))
            axis.errorbar(means.to_numpy(np.float64), positions,
                          xerr=spreads.fillna(0.0).to_numpy(np.float64), fmt="o",
                          color=PALETTE[0], markersize=3.5, elinewidth=1, capsize=0, zorder=3)
            for position, network in zip(positions, networks):
                values = table.loc[table["network"] == network, column].to_numpy(np.float64)
                # Just below the mean's bar, so neither hides the other.
                axis.scatter(values, np.full(len(values), position + 0.25), s=5, color="0.55",
                             linewidths=0, zorder=2)
            axis.set_xlabel(_metric_label(metric))
            _plain_ticks(axis.xaxis, bins=4)
        _network_rows(axes[0][0], networks)
        _bottom_legend(figure, [
            plt.Line2D([], [], color=PALETTE[0], marker="o", markersize=3.5, linewidth=1),
            plt.Line2D([], [], color="0.55", marker="o", markersize=2.5, linestyle="none"),
        ], ["mean and std over excluded classes", "one excluded class"])
    return figure


def plot_attack_accuracy(summary, confidence=0.95, show_all_images=True):
    """Attack accuracy per network with Wilson intervals, one panel per attack.

    summary: ``Study.attack_summary()``: columns network, attack, th, images, attack_accuracy,
    correct_images, attack_accuracy_on_correct (and seed, defence, strategy); one defence.
    Networks are rows (in the order of ``summary``), th levels are colours within a row. Filled
    markers with horizontal bars: attack accuracy over the correctly classified images (per th;
    docs/analysis.md's robustness outcome pools the th levels) with its ``confidence`` Wilson
    interval (``analysis.attack_accuracy_intervals``, the table's function). Open diamonds
    (``show_all_images``): the
    authors' attack accuracy over all attacked images, which also counts the network's clean
    errors as attack successes. Higher = easier to attack. Several seeds are pooled: their
    counts are summed, so the interval covers the attacked images, not the spread over seeds
    (the analysis tables give that).
    """
    intervals = analysis.attack_accuracy_intervals(_pool_seeds(summary), alpha=1.0 - confidence)
    intervals["over"] = intervals["quantity"].map(
        {tables.ATTACK_ACCURACY_ON_CORRECT: "correct", tables.ATTACK_ACCURACY: "all"})
    attacks = list(dict.fromkeys(intervals["attack"]))
    networks = list(dict.fromkeys(intervals["network"]))
    levels = sorted(intervals["th"].dropna().unique()) + (
        [np.nan] if intervals["th"].isna().any() else []
    )
    colours = _level_colours(len(levels))
    # Rows of points per network: one per th, spread over most of the network's band.
    spread = 0.7 / max(len(levels), 1)
    offsets = (np.arange(len(levels)) - (len(levels) - 1) / 2) * spread
    row_inches = max(0.28, 0.09 * len(levels) + 0.08)
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, len(attacks), squeeze=False, layout="constrained", sharey=True, sharex=True,
            figsize=(_figure_width(len(attacks)),
                     _figure_height(len(networks) * row_inches + 1.0)),
        )
        for axis, attack in zip(axes[0], attacks):
            rows = intervals[intervals["attack"] == attack]
            _shade_alternate_rows(axis, len(networks))
            for level, colour, offset in zip(levels, colours, offsets):
                level_rows = rows[_equal_or_both_missing(rows["th"], level)]
                correct = level_rows[level_rows["over"] == "correct"].set_index("network")
                correct = correct.reindex([name for name in networks if name in correct.index])
                positions = np.array([networks.index(name) for name in correct.index]) + offset
                drawn = correct["value"].notna().to_numpy()
                axis.errorbar(
                    correct["value"].to_numpy(np.float64)[drawn], positions[drawn],
                    xerr=_error_lengths(correct[drawn]), fmt="o", color=colour, markersize=3,
                    elinewidth=0.9, capsize=0, zorder=3,
                )
                if show_all_images:
                    every = level_rows[level_rows["over"] == "all"].set_index("network")
                    every = every.reindex(correct.index)
                    axis.scatter(every["value"], positions, marker="D", s=14,
                                 facecolors="none", edgecolors=colour, linewidths=0.8, zorder=4)
            axis.set_title(f"{attack} attack")
            axis.set_xlim(-0.03, 1.03)
            axis.set_xlabel("attack accuracy")
        _network_rows(axes[0][0], networks)
        handles = [
            plt.Line2D([], [], color=colour, marker="o", markersize=3, linewidth=0.9,
                       label=f"th = {_format_th(level)}")
            for level, colour in zip(levels, colours)
        ]
        handles.append(plt.Line2D([], [], color="0.2", marker="o", markersize=3, linewidth=0.9,
                                  label=f"on correct images ({confidence:.0%} Wilson)"))
        if show_all_images:
            handles.append(plt.Line2D([], [], color="0.2", marker="D", markersize=4,
                                      markerfacecolor="none", linestyle="none",
                                      label="on all images (authors')"))
        _bottom_legend(figure, handles, [handle.get_label() for handle in handles])
    return figure


def plot_metric_intervals(intervals, metrics=None):
    """Transferability metrics per network with their intervals, one panel per metric.

    intervals: long table with columns network, metric, value, ci_low, ci_high (and n, the
    number of excluded classes or images behind the value, if known), one row per (network,
    metric), e.g. the bootstrap intervals of ``rzs.analysis``. metrics: which to draw, in order
    (default: all, in the order of the table). Networks are rows, shared by every panel; each
    panel has its own scale. Lower DBM and AM = more transferable (better).
    """
    tables.check_columns(intervals, tables.METRIC_INTERVALS, "intervals")
    _require_unique(intervals, "intervals", ["network", "metric"])
    chosen = _chosen(intervals["metric"], metrics, "metrics")
    networks = list(dict.fromkeys(intervals["network"]))
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, len(chosen), squeeze=False, layout="constrained", sharey=True,
            figsize=(_figure_width(len(chosen), panels_per_column=2),
                     _figure_height(0.22 * len(networks) + 0.8)),
        )
        for axis, metric in zip(axes[0], chosen):
            rows = intervals[intervals["metric"] == metric].set_index("network")
            rows = rows.reindex([name for name in networks if name in rows.index])
            _shade_alternate_rows(axis, len(networks))
            axis.errorbar(rows["value"].to_numpy(np.float64),
                          [networks.index(name) for name in rows.index],
                          xerr=_error_lengths(rows), fmt="o", color=PALETTE[0], markersize=3.5,
                          elinewidth=1, capsize=0, zorder=3)
            axis.set_xlabel(_metric_label(metric))
            _plain_ticks(axis.xaxis, bins=4)
        _network_rows(axes[0][0], networks)
    return figure


def plot_predictor_ranking(comparison, baseline="clean accuracy", attacks=None):
    """Predictors of robustness ranked by their rank correlation with each outcome.

    comparison: ``rzs.predictors.rank_correlations`` rows (predictor, attack, rho, ci_low,
    ci_high). One panel per attack (default: all, in table order), predictors as rows sorted by
    their mean |rho| over the panels, the baseline's rho as a dashed line in every panel so a
    predictor that beats it stands out. Exploratory: no verdicts are drawn.
    """
    tables.check_columns(comparison, ("predictor", "attack", "rho", "ci_low", "ci_high"), "comparison")
    _require_unique(comparison, "comparison", ["predictor", "attack"])
    chosen = _chosen(comparison["attack"], attacks, "attacks")
    strength = comparison.assign(strength=comparison["rho"].abs()).groupby("predictor")["strength"].mean()
    predictors = list(strength.sort_values(ascending=False).index)
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, len(chosen), squeeze=False, layout="constrained", sharey=True,
            figsize=(_figure_width(len(chosen), panels_per_column=2),
                     _figure_height(0.22 * len(predictors) + 0.9)),
        )
        for axis, attack in zip(axes[0], chosen):
            rows = comparison[comparison["attack"] == attack].set_index("predictor")
            rows = rows.reindex([name for name in predictors if name in rows.index])
            _shade_alternate_rows(axis, len(predictors))
            positions = [predictors.index(name) for name in rows.index]
            colours = [PALETTE[1] if name == baseline else PALETTE[0] for name in rows.index]
            lengths = _error_lengths(rows.rename(columns={"rho": "value"}))
            for position, value, low, high, colour in zip(positions, rows["rho"], *lengths, colours):
                axis.errorbar(value, position, xerr=[[low], [high]], fmt="o", color=colour,
                              markersize=3.5, elinewidth=1, capsize=0, zorder=3)
            if baseline in rows.index:
                axis.axvline(rows.loc[baseline, "rho"], color=PALETTE[1], linestyle="--", linewidth=0.8)
            axis.axvline(0, color="0.5", linewidth=0.6)
            axis.set_xlim(-1.05, 1.05)
            axis.set_xlabel(f"Spearman rho with {attack} outcome")
        _network_rows(axes[0][0], predictors)
    return figure


def plot_metric_vs_attack(metric_intervals, outcome_intervals, metric="DBM", correlations=None,
                          line_replicates=None, panel_keys=None, columns=3, confidence=0.95,
                          band_resamples=2000, seed=0,
                          outcome_label="attack accuracy (correct images)"):
    """A metric against the robustness outcome across networks, one panel per outcome.

    metric_intervals: long table network, metric, value, ci_low, ci_high (one row per network
        and metric); the rows of ``metric`` are the x values with horizontal interval bars.
    outcome_intervals: long table network, value, ci_low, ci_high plus ``panel_keys``: the y
        values with vertical bars (e.g. ``analysis.robustness_outcomes``: attack accuracy over
        correctly classified images, pooled over th), one row per network and panel.
    panel_keys: columns of ``outcome_intervals`` that name a panel (default: those of attack
        and th it has).
    correlations: optional table with the panel keys (and a metric column, filtered to
        ``metric``, if present), value (r), ci_low, ci_high, p and optionally p_adjusted; each
        panel's title then states "r = value [ci_low, ci_high], p = p (adj. p_adjusted)" as given.
    line_replicates: optional table with the panel keys, slope and intercept: bootstrap
        replicates of the least-squares line y = slope x + intercept, whose pointwise
        ``confidence`` percentile band is drawn. Without it, the band comes from
        ``band_resamples`` resamples of the networks with replacement (random generator
        ``seed``), which treats the point estimates as exact.
    columns: panels per row. The line is the least-squares fit to the point estimates.
    outcome_label: the y axis's label.
    """
    tables.check_columns(metric_intervals, tables.METRIC_INTERVALS, "metric_intervals")
    tables.check_columns(outcome_intervals, (tables.NETWORK, *INTERVAL_COLUMNS), "outcome_intervals")
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1; received {columns!r}")
    if metric not in set(metric_intervals["metric"]):
        raise ValueError(f"metric must be one of {sorted(metric_intervals['metric'].unique())}; "
                         f"received {metric!r}")
    keys = [column for column in ("attack", "th") if column in outcome_intervals.columns] if (
        panel_keys is None) else list(panel_keys)
    tables.check_columns(outcome_intervals, keys, "outcome_intervals")
    _require_unique(outcome_intervals, "outcome_intervals", ["network", *keys])
    chosen = metric_intervals[metric_intervals["metric"] == metric]
    _require_unique(chosen, "metric_intervals", ["network", "metric"])
    joined = chosen[["network", *INTERVAL_COLUMNS]].merge(
        outcome_intervals[["network", *keys, *INTERVAL_COLUMNS]], on="network",
        suffixes=("_metric", "_outcome"),
    )
    if correlations is not None:
        tables.check_columns(correlations, (*keys, *INTERVAL_COLUMNS, "p"), "correlations")
        if "metric" in correlations.columns:
            correlations = correlations[correlations["metric"] == metric]
    if line_replicates is not None:
        tables.check_columns(line_replicates, (*keys, "slope", "intercept"), "line_replicates")
    panels = list(dict.fromkeys(_panel_tuples(outcome_intervals, keys)))
    styles = _network_styles(chosen["network"])
    width = min(columns, len(panels))
    rows = -(-len(panels) // width)
    panel_inches = 2.2 if width > 1 else 2.6
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, width, squeeze=False, layout="constrained", sharex=True, sharey=True,
            figsize=(_figure_width(width, panels_per_column=1),
                     _figure_height(rows * panel_inches + 0.25 * -(-len(styles) // 4) + 0.3)),
        )
        for axis, panel in zip(axes.flat, panels):
            selected = joined[_panel_mask(joined, keys, panel)]
            for network, colour, marker in styles:
                point = selected[selected["network"] == network]
                if point.empty:
                    continue
                axis.errorbar(
                    point["value_metric"].to_numpy(np.float64),
                    point["value_outcome"].to_numpy(np.float64),
                    xerr=_error_lengths(point, suffix="_metric"),
                    yerr=_error_lengths(point, suffix="_outcome"),
                    fmt=marker, color=colour, markersize=4, markeredgecolor="white",
                    markeredgewidth=0.4, elinewidth=0.7, capsize=0, zorder=3,
                )
            replicates = None if line_replicates is None else line_replicates[
                _panel_mask(line_replicates, keys, panel)][["slope", "intercept"]].to_numpy()
            _draw_fit_band(axis, selected["value_metric"].to_numpy(dtype=np.float64),
                           selected["value_outcome"].to_numpy(dtype=np.float64), replicates,
                           confidence, band_resamples, seed)
            title = ", ".join(_format_key(key, value) for key, value in zip(keys, panel))
            if correlations is not None:
                title += "\n" + _correlation_text(correlations[_panel_mask(correlations, keys,
                                                                           panel)])
            axis.set_title(title)
            _plain_ticks(axis.xaxis, bins=5)
            _plain_ticks(axis.yaxis, bins=5)
        for axis in axes.flat[len(panels):]:
            axis.set_visible(False)
        for axis in axes[-1]:
            axis.set_xlabel(_metric_label(metric))
        for axis in axes[:, 0]:
            axis.set_ylabel(outcome_label)
        _bottom_legend(figure, *_network_legend(styles))
    return figure


def plot_defence_comparison(values, tests, quantities=None, null_control=analysis.NULL_CONTROL,
                            vanilla="vanilla", columns=2):
    """Each defence's effect per quantity: a forest of differences with intervals.

    values: per-network table with columns network, defence, quantity, value (ci_low and
        ci_high may be present and are not drawn): vanilla rows (defence == ``vanilla``) and
        defended rows. Each network's difference, defended - vanilla, is a small grey dot.
    tests: one row per (defence, quantity) with columns defence, quantity, value (the effect,
        defended - vanilla, at the network level), ci_low, ci_high, p and p_adjusted (and n,
        if given: in the panel title, or beside p where it differs between defences), e.g.
        ``analysis.defence_tests``; drawn as a black dot with its interval. The figure draws
        the tests as given, so the table and the figure cannot disagree.
    quantities: which quantities to draw, in order (default: all in ``tests``).
    null_control: the defence label of the null control (vanilla retrained with the next seed,
        through the same test), drawn last, in grey, below a dashed line; the tests must have
        it. None: no null-control row.
    columns: panels per row. One panel per quantity, each with its own x axis (quantities
        have different units), defences as rows and the tests' p-values on the right.
    """
    tables.check_columns(values, tables.NETWORK_VALUES, "values")
    tables.check_columns(tests, (tables.DEFENCE, tables.QUANTITY, *INTERVAL_COLUMNS, "p", "p_adjusted"), "tests")
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1; received {columns!r}")
    chosen = _chosen(tests["quantity"], quantities, "quantities")
    defences = [defence for defence in dict.fromkeys(tests["defence"])
                if defence not in (vanilla, null_control)]
    if null_control is not None:
        if null_control not in set(tests["defence"]):
            raise ValueError(f"null_control must be a defence of tests, one of "
                             f"{sorted(map(str, tests['defence'].unique()))}; received "
                             f"{null_control!r} (None draws no null-control row)")
        defences.append(null_control)
    differences = _paired_differences(values, vanilla)
    width = min(columns, len(chosen))
    rows = -(-len(chosen) // width)
    with plt.rc_context(PAPER_STYLE):
        # Every panel has the same rows, so only the first column names them.
        figure, axes = plt.subplots(
            rows, width, squeeze=False, layout="constrained", sharey=True,
            figsize=(_figure_width(width, panels_per_column=1),
                     _figure_height(rows * (0.2 * len(defences) + 0.75) + 0.2)),
        )
        for axis, quantity in zip(axes.flat, chosen):
            in_quantity = tests[tests["quantity"] == quantity]
            p_labels = []
            for row, defence in enumerate(defences):
                test = in_quantity[in_quantity["defence"] == defence]
                points = differences[(differences["defence"] == defence)
                                     & (differences["quantity"] == quantity)]["difference"]
                # Just below the interval, so the dots neither hide it nor hide behind it.
                axis.scatter(points, np.full(len(points), row + 0.22), s=6, color="0.6",
                             linewidths=0, zorder=2)
                if test.empty:
                    p_labels.append("no test")
                    continue
                test = test.iloc[0]
                axis.errorbar(
                    [float(test["value"])], [row], xerr=_error_lengths(test.to_frame().T),
                    fmt="o",
                    color="0.45" if defence == null_control else "black", markersize=3.5,
                    elinewidth=1.1, capsize=0, zorder=3,
                )
                p_labels.append(_test_text(test, with_n="n" in tests.columns and
                                           in_quantity["n"].nunique() > 1))
            axis.axvline(0.0, color="0.5", linewidth=0.7, linestyle=":", zorder=1)
            if null_control is not None:
                axis.axhline(len(defences) - 1.5, color="0.6", linewidth=0.6, linestyle="--")
            # The p-values sit on a second y axis, so the layout keeps them off the data.
            right = axis.secondary_yaxis("right")
            right.set_yticks(range(len(defences)), p_labels)
            right.tick_params(length=0, labelsize=6.5)
            right.spines["right"].set_visible(False)
            title = str(quantity)
            if "n" in tests.columns and in_quantity["n"].nunique() == 1:
                title += f" (n = {int(in_quantity['n'].iloc[0])})"
            axis.set_title(title)
            axis.set_xlabel("defended − vanilla")
            _plain_ticks(axis.xaxis, bins=3)
        axes[0][0].set_ylim(len(defences) - 0.5, -0.5)
        axes[0][0].set_yticks(range(len(defences)), [
            _null_control_label(defence) if defence == null_control else str(defence)
            for defence in defences
        ])
        for axis in axes.flat[len(chosen):]:
            axis.set_visible(False)
        figure.legend(
            handles=[
                plt.Line2D([], [], color="black", marker="o", markersize=3.5, linewidth=1.1,
                           label="effect and interval (tests)"),
                plt.Line2D([], [], color="0.6", marker="o", markersize=2.5, linestyle="none",
                           label="one network's difference"),
            ],
            loc="outside lower center", ncols=2, frameon=False,
        )
    return figure


def _polygon_figure(panels, title, columns):
    """panels: {panel title: (soft labels (M, K), K vertex names)} -> Figure."""
    if isinstance(columns, bool) or not isinstance(columns, (int, np.integer)) or columns < 1:
        raise ValueError(f"columns must be an integer >= 1; received {columns!r}")
    width = min(columns, len(panels))
    rows = -(-len(panels) // width)
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, width, squeeze=False, layout="constrained",
            # The polygon's labelled box is 3.5 x 2.5 units; a square cell would waste height.
            figsize=(TWO_COLUMN_INCHES, rows * TWO_COLUMN_INCHES / width * 0.8 + 0.6),
        )
        for axis, (panel_title, (soft_labels, vertex_names)) in zip(axes.flat, panels.items()):
            _draw_polygon(axis, soft_labels, vertex_names)
            axis.set_title(panel_title, pad=10)
        for axis in axes.flat[len(panels):]:
            axis.set_visible(False)
        figure.legend(
            handles=[
                plt.Line2D([], [], color=PALETTE[0], marker="o", linestyle="none", markersize=4,
                           alpha=0.6, label="image (probability-weighted mean of the vertices)"),
                plt.Line2D([], [], color=PALETTE[3], marker="X", linestyle="none", markersize=7,
                           label="mean of the images"),
            ],
            loc="outside lower center", ncols=2, frameon=False,
        )
        figure.suptitle(title)
    return figure


def _draw_polygon(axis, soft_labels, vertex_names):
    vertices = polygon_vertices(len(vertex_names))
    points = polygon_projection(soft_labels)
    outline = np.vstack([vertices, vertices[:1]])
    axis.plot(outline[:, 0], outline[:, 1], color="0.7", linewidth=0.8, zorder=1)
    axis.scatter(vertices[:, 0], vertices[:, 1], color="0.4", s=10, zorder=2)
    axis.scatter(points[:, 0], points[:, 1], color=PALETTE[0], s=5, alpha=0.35, linewidths=0,
                 zorder=3)
    centre = points.mean(axis=0)
    axis.scatter(*centre, color=PALETTE[3], marker="X", s=45, edgecolors="white",
                 linewidths=0.6, zorder=4)
    for (x, y), name in zip(vertices, vertex_names):
        axis.text(1.1 * x, 1.1 * y, name, fontsize=6, color="0.15",
                  ha="left" if x > 0.2 else "right" if x < -0.2 else "center",
                  va="bottom" if y > 0.2 else "top" if y < -0.2 else "center")
    axis.set_xlim(-1.75, 1.75)
    axis.set_ylim(-1.25, 1.25)
    axis.set_aspect("equal")
    axis.axis("off")


def _format_p(p_value):
    return "n/a" if np.isnan(p_value) else f"{p_value:.2g}"


def _network_styles(networks):
    """(network, colour, marker) per distinct network, in order of first appearance."""
    names = list(dict.fromkeys(networks))
    return [
        (name, PALETTE[index % len(PALETTE)], MARKERS[(index // len(PALETTE)) % len(MARKERS)])
        for index, name in enumerate(names)
    ]


def _network_legend(styles):
    handles = [
        plt.Line2D([], [], color=colour, marker=marker, linestyle="none", markersize=5)
        for _, colour, marker in styles
    ]
    return handles, [str(name) for name, _, _ in styles]


def _pool_seeds(summary):
    """An attack summary with several seeds' counts summed per network, attack and th."""
    tables.check_columns(summary, tables.ATTACK_SUMMARY, "summary")
    if "defence" in summary.columns and summary["defence"].nunique() > 1:
        raise ValueError(f"summary must hold one defence; received "
                         f"{sorted(map(str, summary['defence'].unique()))}")
    if "seed" not in summary.columns or summary["seed"].nunique() < 2:
        return summary
    keys = ["network", "attack", "th"]
    successes = summary.assign(**{
        accuracy: np.nan_to_num(summary[accuracy].to_numpy(np.float64)) * summary[count]
        for accuracy, count in ATTACK_COUNTS.items()
    })
    pooled = successes.groupby(keys, sort=False, dropna=False)[
        [*ATTACK_COUNTS, *ATTACK_COUNTS.values()]].sum().reset_index()
    for accuracy, count in ATTACK_COUNTS.items():
        pooled[accuracy] = (pooled[accuracy] / pooled[count]).where(pooled[count] > 0)
    return pooled


def _require_unique(frame, name, keys):
    repeated = frame[frame.duplicated(keys, keep=False)]
    if not repeated.empty:
        first = repeated.iloc[0]
        raise ValueError(
            f"{name} must have one row per {keys}; received {int(repeated.duplicated(keys).sum())}"
            f" repeated, e.g. {dict(first[keys])} (filter other keys such as seed first)"
        )


def _chosen(column, requested, name):
    """The requested values of ``column`` in order (default: all, in order of appearance)."""
    present = list(dict.fromkeys(column))
    if requested is None:
        return present
    chosen = list(requested)
    unknown = [value for value in chosen if value not in present]
    if unknown or not chosen:
        raise ValueError(f"{name} must be among {present}; received {chosen}, unknown {unknown}")
    return chosen


def _figure_width(panels, panels_per_column=1):
    """One column wide while ``panels_per_column`` panels fit, else two columns wide."""
    return ONE_COLUMN_INCHES if panels <= panels_per_column else TWO_COLUMN_INCHES


def _figure_height(inches):
    return float(np.clip(inches, 1.6, PAGE_HEIGHT_INCHES))


def _level_colours(count):
    # Viridis is readable with every common colour-vision deficiency; its pale yellow end
    # vanishes on white paper, so the levels stop short of it.
    return [plt.get_cmap("viridis")(position) for position in np.linspace(0.0, 0.8, count)]


def _shade_alternate_rows(axis, count):
    """Grey bands behind every other row, so a row's points read as one group."""
    for row in range(1, count, 2):
        axis.axhspan(row - 0.5, row + 0.5, color="0.94", linewidth=0, zorder=0)


def _network_rows(axis, networks):
    """Networks as rows from top to bottom (the axis is shared by the figure's panels)."""
    axis.set_yticks(range(len(networks)), [str(name) for name in networks])
    axis.set_ylim(len(networks) - 0.5, -0.5)
    axis.tick_params(axis="y", length=0)


def _error_lengths(frame, suffix=""):
    """(2, n) bar lengths below and above each value, from columns ci_low, ci_high."""
    value = frame[f"value{suffix}"].to_numpy(dtype=np.float64)
    lengths = np.vstack([value - frame[f"ci_low{suffix}"].to_numpy(dtype=np.float64),
                         frame[f"ci_high{suffix}"].to_numpy(dtype=np.float64) - value])
    # A BCa interval can exclude its own estimate (a skewed bootstrap distribution); matplotlib
    # draws no negative bar, so that side stops at the estimate.
    return np.clip(lengths, 0.0, None)


def _panel_tuples(frame, keys):
    return [tuple(row) for row in frame[keys].itertuples(index=False, name=None)]


def _panel_mask(frame, keys, panel):
    mask = np.ones(len(frame), dtype=bool)
    for key, value in zip(keys, panel):
        mask &= _equal_or_both_missing(frame[key], value).to_numpy()
    return mask


def _plain_ticks(axis, bins):
    """At most ``bins`` ticks written out in full (0.1, 8e-05): no offset or scale text.

    Matplotlib otherwise moves a common offset or power of ten to the axis end ("1e-5"), where
    it overprints a neighbouring label or annotation.
    """
    axis.set_major_locator(plt.MaxNLocator(bins, steps=[1, 2, 2.5, 5, 10]))
    # Locator ticks are 1, 2, 2.5 or 5 times a power of ten: three significant digits are exact.
    axis.set_major_formatter(plt.FuncFormatter(
        lambda value, position: f"{value:.3g}".replace("-", "\N{MINUS SIGN}")))


def _bottom_legend(figure, handles, labels):
    """A legend below the panels with as many columns as fit the figure's width.

    A figure legend outside the axes is not shrunk by the layout, so too many columns run off
    the page; each candidate is measured as drawn, with a margin for text whose width changes
    a little with the resolution it is rendered at.
    """
    renderer = figure.canvas.get_renderer()
    for columns in range(len(labels), 0, -1):
        legend = figure.legend(handles, labels, loc="outside lower center", frameon=False,
                               ncols=columns, columnspacing=1.2, handlelength=1.5)
        if columns == 1 or legend.get_window_extent(renderer).width <= 0.95 * figure.bbox.width:
            return legend
        legend.remove()


def _null_control_label(defence):
    if defence == analysis.NULL_CONTROL:
        return "null control (vanilla, next seed)"
    return f"{defence} (null control)"


def _metric_label(metric):
    return f"{metric} (lower = better)" if metric in METRIC_LABELS else str(metric)


def _format_th(value):
    """th as people write it: 1, 10, 0.5; 'none' for attacks without a budget."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "none"
    number = float(value)
    return str(int(number)) if number.is_integer() else f"{number:g}"


def _format_key(key, value):
    if key == "th":
        return f"th = {_format_th(value)}"
    return str(value) if key in ("attack", "quantity", "outcome") else f"{key} = {value}"


def _correlation_text(rows):
    if rows.empty:
        return "r not given"
    row = rows.iloc[0]
    text = (f"r = {row['value']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}], "
            f"p = {_format_p(row['p'])}")
    if "p_adjusted" in rows.columns:
        text += f" (adj. {_format_p(row['p_adjusted'])})"
    return text


def _test_text(test, with_n):
    text = f"p = {_format_p(test['p'])}, adj. {_format_p(test['p_adjusted'])}"
    if with_n and not pd.isna(test["n"]):
        text += f", n = {int(test['n'])}"
    return text


def _paired_differences(values, vanilla):
    """defended - vanilla per network: columns network, defence, quantity, difference."""
    _require_unique(values, "values", ["network", "defence", "quantity"])
    is_vanilla = values["defence"] == vanilla
    pairs = values[~is_vanilla].merge(values[is_vanilla][["network", "quantity", "value"]],
                                      on=["network", "quantity"], suffixes=("", "_vanilla"))
    return pairs.assign(difference=pairs["value"] - pairs["value_vanilla"])[
        ["network", "defence", "quantity", "difference"]]


def _draw_fit_band(axis, x, y, replicates, confidence, resamples, seed):
    """Least-squares line over the points and the pointwise percentile band of its replicates.

    replicates: (B, 2) rows of (slope, intercept), or None to resample the points' indices
    with replacement ``resamples`` times; resamples whose x values are all equal have no line
    and are dropped.
    """
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(x) < 2 or np.ptp(x) == 0:
        return
    slope, intercept = np.polyfit(x, y, 1)
    grid = np.linspace(x.min(), x.max(), 50)
    if replicates is None:
        indices = np.random.default_rng(seed).integers(0, len(x), size=(resamples, len(x)))
        sampled_x, sampled_y = x[indices], y[indices]
        centred_x = sampled_x - sampled_x.mean(axis=1, keepdims=True)
        spread = (centred_x ** 2).sum(axis=1)
        kept = spread > 0
        slopes = (centred_x * (sampled_y - sampled_y.mean(axis=1, keepdims=True))).sum(
            axis=1)[kept] / spread[kept]
        intercepts = sampled_y.mean(axis=1)[kept] - slopes * sampled_x.mean(axis=1)[kept]
        replicates = np.column_stack([slopes, intercepts])
    if len(replicates):
        lines = replicates[:, :1] * grid + replicates[:, 1:]
        tail = 50.0 * (1.0 - confidence)
        low, high = np.percentile(lines, [tail, 100.0 - tail], axis=0)
        axis.fill_between(grid, low, high, color="0.85", linewidth=0, zorder=1)
    axis.plot(grid, slope * grid + intercept, color="black", linewidth=1, zorder=2)


def _equal_or_both_missing(column, value):
    """Row mask of ``column == value``, where NaN keys (attacks without a th) match NaN."""
    if isinstance(value, float) and np.isnan(value):
        return column.isna()
    return column == value


def _check_square(matrix, name):
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise ValueError(f"{name} must be an N x N matrix with N >= 2; received shape "
                         f"{array.shape}")
    return array


def _check_images(images):
    """(K, H, W, C) uint8 images with C = 1 or 3 and K >= 1 -> the array."""
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise ValueError(f"images must be uint8 pixels in [0, 255]; received dtype {array.dtype}")
    if array.ndim != 4 or array.shape[0] == 0 or array.shape[-1] not in (1, 3):
        raise ValueError(
            f"images must have shape (K, H, W, C) with K >= 1 and C = 1 (grey) or 3 (RGB); "
            f"received shape {array.shape}"
        )
    return array


def plot_adversarial_transferability(table, successful_only=False):
    """DBM and AM of adversarial examples minus those of the same clean images, per network.

    table: ``rzs.adversarial_transfer.adversarial_estimates`` rows (network, attack, th,
    successful_only, metric, difference, difference_ci_low, difference_ci_high); the rows of
    ``successful_only`` are drawn. One panel per metric, networks as rows, each attack and th a
    colour and marker side by side within a row, with its interval. Right of 0, the leave-one-out
    models describe the unseen class's adversarial images less consistently (DBM) or further from
    the full model's amalgam (AM) than its clean images.
    """
    columns = ["network", "attack", "th", "successful_only", "metric", "difference", "difference_ci_low",
               "difference_ci_high"]
    missing = [column for column in columns if column not in table.columns]
    chosen = table[table["successful_only"] == successful_only] if not missing else table.iloc[:0]
    if missing or chosen.empty:
        raise ValueError(f"table must have columns {columns} and rows with successful_only="
                         f"{successful_only}; received columns {list(table.columns)}, {len(chosen)} such rows")
    networks = list(dict.fromkeys(chosen["network"]))
    series = list(dict.fromkeys(zip(chosen["attack"], chosen["th"])))
    panels = [metric for metric in ("DBM", "AM") if metric in set(chosen["metric"])]
    # Each series gets its own height within a network's row, so intervals never overlap.
    offsets = np.linspace(-0.32, 0.32, len(series)) if len(series) > 1 else np.zeros(1)
    row_inches = max(0.3, 0.11 * len(series))
    styles = [(PALETTE[index % len(PALETTE)], MARKERS[index % len(MARKERS)]) for index in range(len(series))]
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(1, len(panels), squeeze=False, sharey=True, layout="constrained",
                                    figsize=(ONE_COLUMN_INCHES, _figure_height(row_inches * len(networks) + 1.3)))
        for axis, metric in zip(axes[0], panels):
            _shade_alternate_rows(axis, len(networks))
            for offset, (attack, th), (colour, marker) in zip(offsets, series, styles):
                rows = chosen[(chosen["metric"] == metric) & (chosen["attack"] == attack) & (chosen["th"] == th)]
                value = rows["difference"].to_numpy(np.float64)
                lengths = np.clip(np.vstack([value - rows["difference_ci_low"].to_numpy(np.float64),
                                             rows["difference_ci_high"].to_numpy(np.float64) - value]), 0.0, None)
                axis.errorbar(value, [networks.index(name) + offset for name in rows["network"]], xerr=lengths,
                              fmt=marker, color=colour, markersize=3, elinewidth=0.9, capsize=0, zorder=3)
            axis.axvline(0, color="0.5", linewidth=0.6)
            _plain_ticks(axis.xaxis, 4)
            axis.set_xlabel(f"{metric}: adversarial \N{MINUS SIGN} clean")
        _network_rows(axes[0][0], networks)
        handles = [plt.Line2D([], [], color=colour, marker=marker, linestyle="none", markersize=4)
                   for colour, marker in styles]
        _bottom_legend(figure, handles, [f"{attack} th = {_format_th(th)}" for attack, th in series])
    return figure
