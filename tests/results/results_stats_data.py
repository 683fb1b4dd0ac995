"""Published data sets shared by the statistics tests."""

import numpy as np

nan = np.nan

# Krippendorff, K. (2011). "Computing Krippendorff's Alpha-Reliability". Annenberg School for
# Communication, University of Pennsylvania; example "C. Nominal data, any number of observers, missing
# data": 4 observers (rows there, columns here) x 12 units. The same matrix is Gwet (2014), Handbook of
# Inter-Rater Reliability, 4th ed., p. 120, shipped with Gwet's irrCAC R package as `cac.raw4raters`.
KRIPPENDORFF_2011 = np.array(
    [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
).T

# Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater reliability.
# Psychological Bulletin, 86(2), 420-428. Table 2: 6 targets x 4 judges.
SHROUT_FLEISS_1979 = np.array(
    [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float
)

# Gwet's irrCAC R package, data set `cont3x3abstractors` (Gwet 2014): two abstractors classify 100
# pregnancies as Ectopic, AIU, NIU (coded 1, 2, 3). Rows: abstractor 1, columns: abstractor 2.
ABSTRACTORS_TABLE = np.array([[13, 0, 0], [0, 20, 7], [0, 4, 56]])


def table_to_matrix(table: np.ndarray) -> np.ndarray:
    """Expand a 2-rater contingency table into a units x 2 reliability matrix (categories 1..q)."""
    rows = []
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            rows += [(i + 1, j + 1)] * int(table[i, j])
    return np.array(rows, dtype=float)
