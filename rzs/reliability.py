"""Are differences between networks signal? Seed-to-seed reliability of per-network quantities.

A quantity (a metric such as DBM, or an outcome such as an attack's accuracy) measured for n
networks, each trained with k seeds, is a table x[i, j] (network i, seed j). Two questions:

- How much of its variance lies between networks rather than between seeds of one network?
  The one-way random-effects intraclass correlation (Shrout and Fleiss 1979, ICC(1,1)), from the
  mean squares between networks (MSB) and within networks (MSW, the seed-to-seed variance):

      MSB = k / (n - 1) * sum_i (xbar_i - xbar)^2
      MSW = 1 / (n (k - 1)) * sum_i sum_j (x_ij - xbar_i)^2
      ICC(1,1) = (MSB - MSW) / (MSB + (k - 1) MSW)      one seed's value
      ICC(1,k) = (MSB - MSW) / MSB                      the mean over the k seeds

  1 means seeds agree perfectly; 0 or below means network differences are no larger than what a
  new seed changes.
- Do the seeds rank the networks alike? Kendall's coefficient of concordance W over the k
  rankings (1: identical rankings, 0: no agreement), and the mean Spearman correlation over the
  k (k - 1) / 2 pairs of seeds.

With one seed none of this is defined, and the table says "needs >= 2 seeds".
"""

import itertools

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from rzs import tables

MINIMUM_SEEDS = 2
MINIMUM_NETWORKS = 2
COLUMNS = (
    "quantity", "networks", "seeds", "between_network_variance", "seed_variance",
    "icc", "icc_mean_of_seeds", "kendall_w", "mean_spearman", "note",
)


def intraclass_correlation(values):
    """One-way random-effects ICC of an (n networks, k seeds) array; see the module docstring.

    values: (n, k) finite array, n >= 2, k >= 2.
    Returns a dict with between_network_variance ((MSB - MSW) / k, the estimated variance of
    the networks' true values; negative when seeds vary more than networks), seed_variance (MSW),
    icc (ICC(1,1)) and icc_mean_of_seeds (ICC(1,k)); ICCs are NaN where every value is equal.
    """
    values = _check_values(values)
    networks, seeds = values.shape
    network_means = values.mean(axis=1)
    between = seeds * np.sum((network_means - values.mean()) ** 2) / (networks - 1)
    within = np.sum((values - network_means[:, None]) ** 2) / (networks * (seeds - 1))
    single = between + (seeds - 1) * within
    return {
        "between_network_variance": float((between - within) / seeds),
        "seed_variance": float(within),
        "icc": float((between - within) / single) if single > 0 else np.nan,
        "icc_mean_of_seeds": float((between - within) / between) if between > 0 else np.nan,
    }


def kendalls_w(values):
    """Kendall's W of the k seeds' rankings of n networks, with the correction for ties.

        R_i = sum_j rank_j(x_ij),   S = sum_i (R_i - mean(R))^2
        W = 12 S / (k^2 (n^3 - n) - k sum_j sum_g (t_g^3 - t_g))

    where t_g are the sizes of the groups of tied values within seed j. values: (n, k).
    Returns W in [0, 1], NaN when every seed ties every network.
    """
    values = _check_values(values)
    networks, seeds = values.shape
    ranks = np.column_stack([scipy_stats.rankdata(values[:, j]) for j in range(seeds)])
    rank_sums = ranks.sum(axis=1)
    spread = np.sum((rank_sums - rank_sums.mean()) ** 2)
    ties = sum(
        np.sum(counts**3 - counts)
        for counts in (np.unique(values[:, j], return_counts=True)[1] for j in range(seeds))
    )
    denominator = seeds**2 * (networks**3 - networks) - seeds * ties
    return float(12 * spread / denominator) if denominator > 0 else np.nan


def mean_pairwise_spearman(values):
    """Mean Spearman correlation between the networks' values under every pair of seeds.

    values: (n, k). Pairs where one seed gives every network the same value are left out;
    NaN when no pair is left.
    """
    values = _check_values(values)
    correlations = []
    for first, second in itertools.combinations(range(values.shape[1]), 2):
        if np.ptp(values[:, first]) > 0 and np.ptp(values[:, second]) > 0:
            correlations.append(scipy_stats.spearmanr(values[:, first], values[:, second]).statistic)
    return float(np.mean(correlations)) if correlations else np.nan


def reliability_table(values):
    """Seed reliability of every quantity in a long table.

    values: DataFrame with columns network, seed, quantity, value; one row per (network, seed,
    quantity), e.g. ("lenet", 0, "DBM", 0.31). Rows with NaN values are left out, and so are the
    networks that lack a seed another network has (the ICC needs every network at every seed).
    Returns one row per quantity with columns COLUMNS: networks and seeds (n and k used), the
    `intraclass_correlation` values, `kendalls_w`, `mean_pairwise_spearman` and note ("" when
    defined, "needs >= 2 seeds" with one seed, "needs >= 2 networks with every seed" otherwise).
    """
    tables.check_columns(values, tables.SEED_VALUES, "values")
    duplicated = values[values.duplicated(subset=["network", "seed", "quantity"], keep=False)]
    if len(duplicated):
        raise ValueError(
            f"values must hold one row per network, seed and quantity; received {len(duplicated)} "
            f"duplicated rows, first: {duplicated.iloc[0][['network', 'seed', 'quantity']].to_dict()}"
        )
    rows = []
    for quantity, rows_of_quantity in values.dropna(subset=["value"]).groupby("quantity", sort=False):
        grid = rows_of_quantity.pivot(index="network", columns="seed", values="value").dropna()
        networks, seeds = grid.shape
        row = {"quantity": quantity, "networks": networks, "seeds": seeds}
        if seeds < MINIMUM_SEEDS:
            row["note"] = f"needs >= {MINIMUM_SEEDS} seeds"
        elif networks < MINIMUM_NETWORKS:
            row["note"] = f"needs >= {MINIMUM_NETWORKS} networks with every seed"
        else:
            array = grid.to_numpy()
            row.update(intraclass_correlation(array))
            row.update(kendall_w=kendalls_w(array), mean_spearman=mean_pairwise_spearman(array), note="")
        rows.append(row)
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _check_values(values):
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < MINIMUM_NETWORKS or array.shape[1] < MINIMUM_SEEDS:
        raise ValueError(
            f"values must be an (n networks, k seeds) array with n >= {MINIMUM_NETWORKS} and "
            f"k >= {MINIMUM_SEEDS}; received shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError("values must be finite; received NaN or infinite entries")
    return array
