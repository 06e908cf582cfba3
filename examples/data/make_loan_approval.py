"""Generate examples/data/loan_approval.csv: synthetic loan decisions with a sensitive attribute.

Each row is a loan application. The approval probability is a logistic function of the
applicant's finances: higher income, a lower debt-to-income ratio (existing debt plus the loan,
over the yearly income), a longer credit history and a stable employment raise it. ``age_group``
(18-29, 30-49, 50+) is the sensitive attribute: younger applicants have shorter credit histories
and lower incomes, and the historical decisions also carry a small direct penalty for 18-29, so
approval rates differ by group (0.59 for 18-29, 0.68 for 30-49, 0.73 for 50+; 0.66 overall) and
the fairness check has a mild disparity to measure. About 1 % of ``existing_debt`` is missing.

Usage:
    python examples/data/make_loan_approval.py [OUTPUT_CSV]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240917
ROWS = 1500
OUTPUT = Path(__file__).with_name("loan_approval.csv")

AGE_GROUPS = ("18-29", "30-49", "50+")
EMPLOYMENT = ("salaried", "self-employed", "contract", "unemployed")
#: Median yearly income by employment type (currency units).
INCOME_BY_EMPLOYMENT = {
    "salaried": 52_000.0,
    "self-employed": 58_000.0,
    "contract": 41_000.0,
    "unemployed": 16_000.0,
}
#: Effect of the employment type on the approval log-odds.
EMPLOYMENT_EFFECT = {"salaried": 0.5, "self-employed": 0.0, "contract": -0.3, "unemployed": -1.4}
#: Direct effect of the age group on the approval log-odds (the disparity in past decisions).
AGE_EFFECT = {"18-29": -0.2, "30-49": 0.0, "50+": 0.0}


def make_applicants(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Draw the applicants' features.

    Args:
        rng: the random generator (seeded by the caller).
        rows: number of applications.

    Returns:
        Columns income, loan_amount, existing_debt (currency units), credit_history_years,
        employment_type and age_group.
    """
    age = rng.choice(AGE_GROUPS, size=rows, p=[0.3, 0.45, 0.25])
    employment = rng.choice(EMPLOYMENT, size=rows, p=[0.55, 0.2, 0.17, 0.08])
    base = np.array([INCOME_BY_EMPLOYMENT[e] for e in employment])
    income = base * np.where(age == "18-29", 0.9, 1.0) * rng.lognormal(0.0, 0.35, rows)
    history_mean = np.select([age == "18-29", age == "30-49"], [6.0, 12.0], 18.0)
    history = np.clip(rng.normal(history_mean, 0.4 * history_mean), 0.0, 45.0)
    loan = np.clip(income * rng.lognormal(np.log(0.35), 0.5, rows), 1_000.0, 150_000.0)
    debt = np.where(rng.random(rows) < 0.3, 0.0, income * rng.lognormal(np.log(0.15), 0.8, rows))
    return pd.DataFrame(
        {
            "income": np.round(income, -2).astype(int),
            "loan_amount": np.round(loan, -2).astype(int),
            "credit_history_years": np.round(history, 1),
            "existing_debt": np.round(debt, -2),
            "employment_type": employment,
            "age_group": age,
        }
    )


def approval_probability(df: pd.DataFrame) -> np.ndarray:
    """Return each application's probability of approval (a logistic model of the features).

    Args:
        df: the output of ``make_applicants``.

    Returns:
        Probabilities in (0, 1), shape (rows,).
    """
    debt_to_income = (df["existing_debt"] + df["loan_amount"]) / df["income"]
    logit = (
        0.9
        + 3.6 * np.log(df["income"] / 50_000)
        - 8.0 * (debt_to_income - 0.55)
        + 0.05 * (df["credit_history_years"] - 10)
        + 2 * df["employment_type"].map(EMPLOYMENT_EFFECT)
        + df["age_group"].map(AGE_EFFECT)
    )
    return 1 / (1 + np.exp(-logit.to_numpy(dtype=float)))


def main(output: Path = OUTPUT) -> None:
    """Write the dataset as CSV (the same bytes on every run).

    Args:
        output: the CSV path.
    """
    rng = np.random.default_rng(SEED)
    applicants = make_applicants(rng, ROWS)
    approved = rng.random(ROWS) < approval_probability(applicants)
    table = applicants.copy()
    table["existing_debt"] = table["existing_debt"].mask(rng.random(ROWS) < 0.01)
    table["approved"] = np.where(approved, "yes", "no")
    table.to_csv(output, index=False, lineterminator="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
