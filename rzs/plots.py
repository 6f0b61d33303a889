"""Paper figures: Raw Zero-Shot polygons, amalgam heatmaps, metrics, correlations and defences.

Every function draws in one style (``PAPER_STYLE``: seaborn's colour-blind palette, DejaVu Sans,
sizes for a printed page) and returns the matplotlib Figure; ``save_figure`` writes it as PNG and
PDF with the metadata that changes from run to run stripped, so the same data give byte-identical
files. Nothing here draws at random, so no seed is needed.
"""

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from cycler import cycler

from rzs import metrics, stats

PALETTE = sns.color_palette("colorblind")
# Colour and marker together keep up to 10 x 8 networks apart, in greyscale print too.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PAPER_STYLE = {
    **sns.axes_style("ticks"),
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7,
    "figure.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": cycler(color=PALETTE),
    # Type 42 embeds TrueType fonts, whose text stays selectable and editable in the PDF.
    "pdf.fonttype": 42,
}
HEATMAP_COLOURS = "viridis"
PNG_DPI = 300
PANEL_INCHES = 2.3
# Room for a figure title and a legend beside a single panel.
MINIMUM_WIDTH_INCHES = 5.0


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
    """DBM and AM per network: bar = mean over excluded classes, error bar = std, dots = classes.

    table: ``metrics.metrics_table`` results of one or more networks, concatenated; networks
    appear in the order of the table.
    """
    summary = metrics.network_metric_values(table)
    networks = list(dict.fromkeys(table["network"]))
    labels = {"DBM": "Davies-Bouldin Metric (DBM)", "AM": "Amalgam Metric (AM)"}
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, 2, layout="constrained", figsize=(max(6.0, 1.1 * len(networks) + 2.0), 3.0)
        )
        for axis, (metric, column) in zip(axes, (("DBM", "dbm"), ("AM", "am"))):
            rows = summary[summary["metric"] == metric].set_index("network").loc[networks]
            positions = np.arange(len(networks))
            axis.bar(positions, rows["value"], width=0.6, color=PALETTE[0], alpha=0.6)
            axis.errorbar(positions, rows["value"], yerr=rows["std"].fillna(0.0), fmt="none",
                          ecolor="black", capsize=3, linewidth=1)
            for position, network in zip(positions, networks):
                values = table.loc[table["network"] == network, column].to_numpy()
                # Beside the error bar rather than on it, so neither hides the other.
                axis.scatter(np.full(len(values), position + 0.18), values, s=8, color="0.25",
                             zorder=3, linewidths=0)
            axis.set_xticks(positions, networks, rotation=30, ha="right",
                            rotation_mode="anchor")
            axis.set_title(labels[metric])
            axis.set_ylabel(f"{metric} (lower = better)")
            axis.set_ylim(bottom=0)
        figure.suptitle("Transferability per network: mean, std and values over excluded classes")
    return figure


def plot_attack_accuracy(summary, accuracy_column="attack_accuracy"):
    """Attack accuracy against th per network, one panel per attack.

    summary: long table with columns network, attack, th and ``accuracy_column`` (e.g.
    ``rzs.study.Study.attack_summary()``); attacks without a budget (th NaN) are drawn at th 0.
    Higher = the network is easier to attack.
    """
    missing = {"network", "attack", "th", accuracy_column} - set(summary.columns)
    if missing:
        raise ValueError(
            f"summary must have columns network, attack, th and {accuracy_column}; received "
            f"{list(summary.columns)}, missing {sorted(missing)}"
        )
    attacks = list(dict.fromkeys(summary["attack"]))
    styles = _network_styles(summary["network"])
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            1, len(attacks), squeeze=False, layout="constrained", sharey=True,
            figsize=(max(len(attacks) * (PANEL_INCHES + 0.4) + 1.6, MINIMUM_WIDTH_INCHES),
                     PANEL_INCHES + 0.4),
        )
        for axis, attack in zip(axes[0], attacks):
            rows = summary[summary["attack"] == attack].fillna({"th": 0})
            for network, colour, marker in styles:
                line = rows[rows["network"] == network].sort_values("th")
                axis.plot(line["th"], line[accuracy_column], color=colour, marker=marker,
                          markersize=4, linewidth=1)
            axis.set_title(f"{attack} attack")
            axis.set_xlabel("th")
            axis.set_xticks(sorted(rows["th"].unique()))
            axis.set_ylim(-0.02, 1.02)
        axes[0][0].set_ylabel("attack accuracy")
        figure.legend(
            *_network_legend(styles), loc="outside right upper", title="network", frameon=False
        )
        figure.suptitle("Attack accuracy per network and th (higher = less robust)")
    return figure


def plot_metric_vs_attack(metrics_values, attacks, metric="DBM", attack_keys=("attack", "th"),
                          columns=4):
    """Metric against attack accuracy across networks, one panel per attack key (attack, th).

    metrics_values, attacks, attack_keys: as in ``stats.correlation_table``. Each panel shows one
    marker per network, the least-squares line, and Pearson r, p and n in its legend.
    """
    keys = list(attack_keys)
    # correlation_table first: it checks both frames before any column is used here.
    correlations = stats.correlation_table(metrics_values, attacks, attack_keys=keys)
    correlations = correlations[correlations["metric"] == metric].reset_index(drop=True)
    if correlations.empty:
        raise ValueError(
            f"metric must be one of {sorted(metrics_values['metric'].unique())}; received "
            f"{metric!r}"
        )
    chosen = metrics_values[metrics_values["metric"] == metric]
    joined = chosen.merge(attacks, on="network").dropna(subset=["value", "accuracy"])
    styles = _network_styles(chosen["network"])
    rows = -(-len(correlations) // columns)
    width = min(columns, len(correlations))
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            rows, width, squeeze=False, layout="constrained", sharex=True,
            figsize=(max(width * PANEL_INCHES + 1.6, MINIMUM_WIDTH_INCHES), rows * PANEL_INCHES),
        )
        for axis, (_, correlation) in zip(axes.flat, correlations.iterrows()):
            selected = joined
            for key in keys:
                selected = selected[_equal_or_both_missing(selected[key], correlation[key])]
            for network, colour, marker in styles:
                point = selected[selected["network"] == network]
                axis.scatter(point["value"], point["accuracy"], color=colour, marker=marker,
                             s=28, label=network, edgecolors="white", linewidths=0.4)
            _draw_fit(axis, selected["value"].to_numpy(), selected["accuracy"].to_numpy(),
                      correlation)
            axis.set_title(", ".join(f"{key} = {correlation[key]}" for key in keys))
            axis.set_ylabel("attack accuracy")
        for axis in axes.flat[len(correlations):]:
            axis.set_visible(False)
        for axis in axes[-1]:
            axis.set_xlabel(metric)
        figure.legend(
            *_network_legend(styles), loc="outside right upper", title="network", frameon=False
        )
        figure.suptitle(f"{metric} against attack accuracy across networks")
    return figure


def plot_defence_comparison(values, quantities=None, pair_on=("network",),
                            defence_column="defence", vanilla="vanilla", value_column="value",
                            quantity_column="quantity"):
    """Defended against vanilla, paired: one row of panels per quantity, one column per defence.

    values: long table as in ``stats.paired_tests`` with group key ``quantity_column``
    (e.g. DBM, AM, an attack accuracy). quantities: which to draw, in order (default: all).
    Each panel joins every pair (vanilla left, defended right; colour and marker = first key of
    ``pair_on``), marks the two means, and states the mean difference and both p-values.
    """
    pair_keys = list(pair_on)
    tests = stats.paired_tests(values, pair_on=pair_keys, group_by=(quantity_column,),
                               defence_column=defence_column, vanilla=vanilla,
                               value_column=value_column)
    chosen = list(dict.fromkeys(values[quantity_column])) if quantities is None else list(
        quantities)
    unknown = sorted(set(chosen) - set(values[quantity_column]))
    if unknown:
        raise ValueError(
            f"quantities must be among {sorted(values[quantity_column].unique())}; received "
            f"unknown {unknown}"
        )
    defences = [defence for defence in dict.fromkeys(values[defence_column]) if defence != vanilla]
    styles = _network_styles(values[pair_keys[0]])
    with plt.rc_context(PAPER_STYLE):
        figure, axes = plt.subplots(
            len(chosen), len(defences), squeeze=False, layout="constrained",
            figsize=(max(len(defences) * 2.0 + 1.6, MINIMUM_WIDTH_INCHES), len(chosen) * 2.6),
        )
        for (row, quantity), (column, defence) in itertools.product(
            enumerate(chosen), enumerate(defences)
        ):
            axis = axes[row, column]
            in_quantity = values[values[quantity_column] == quantity]
            pairs = in_quantity[in_quantity[defence_column] == vanilla].merge(
                in_quantity[in_quantity[defence_column] == defence], on=pair_keys,
                suffixes=("_vanilla", "_defended"),
            )
            for network, colour, marker in styles:
                lines = pairs[pairs[pair_keys[0]] == network]
                for _, pair in lines.iterrows():
                    axis.plot([0, 1], [pair[f"{value_column}_vanilla"],
                                       pair[f"{value_column}_defended"]],
                              color=colour, marker=marker, markersize=4, linewidth=0.9,
                              alpha=0.8)
            test = tests[(tests[defence_column] == defence) & (tests[quantity_column] == quantity)]
            _draw_paired_summary(axis, test.iloc[0] if len(test) else None)
            axis.set_xlim(-0.35, 1.35)
            axis.set_xticks([0, 1], [vanilla, "defended"])
            if row == 0:
                axis.set_title(str(defence), fontsize=9, pad=22)
            if column == 0:
                axis.set_ylabel(str(quantity))
        figure.legend(*_network_legend(styles), loc="outside right upper",
                      title=pair_keys[0], frameon=False)
        figure.suptitle("Defended against vanilla (paired)")
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
            figsize=(
                max(width * PANEL_INCHES, MINIMUM_WIDTH_INCHES),
                rows * PANEL_INCHES * 0.85 + 0.6,
            ),
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
        axis.text(1.1 * x, 1.1 * y, name, fontsize=6.5, color="0.15",
                  ha="left" if x > 0.2 else "right" if x < -0.2 else "center",
                  va="bottom" if y > 0.2 else "top" if y < -0.2 else "center")
    axis.set_xlim(-1.75, 1.75)
    axis.set_ylim(-1.25, 1.25)
    axis.set_aspect("equal")
    axis.axis("off")


def _draw_fit(axis, x, y, correlation):
    if np.isnan(correlation["pearson_r"]):
        # An empty line still gives a legend entry; the table's note says why r is undefined.
        (line,) = axis.plot([], [], color="black", linewidth=1,
                            label=f"r undefined, n = {correlation['n']}")
    else:
        slope, intercept = np.polyfit(x, y, 1)
        span = np.array([x.min(), x.max()])
        (line,) = axis.plot(
            span, slope * span + intercept, color="black", linewidth=1,
            label=f"r = {correlation['pearson_r']:.2f}, p = {_format_p(correlation['pearson_p'])}"
                  f", n = {correlation['n']}",
        )
    axis.legend(handles=[line], loc="best", frameon=False, handlelength=1.2)


def _draw_paired_summary(axis, test):
    """Mark the two means and write the paired tests' result above the panel."""
    if test is None or test["n"] == 0:
        axis.text(0.5, 1.02, "no pairs", transform=axis.transAxes, ha="center", va="bottom",
                  fontsize=6.5)
        return
    axis.scatter([0, 1], [test["vanilla_mean"], test["defended_mean"]], color="black",
                 marker="_", s=300, linewidths=2, zorder=4)
    summary = (
        f"Δ = {test['mean_difference']:+.3g}, n = {test['n']}\n"
        f"t-test p = {_format_p(test['t_p'])}, Wilcoxon p = {_format_p(test['wilcoxon_p'])}"
    )
    axis.text(0.5, 1.02, summary, transform=axis.transAxes, ha="center", va="bottom",
              fontsize=6.5)


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
