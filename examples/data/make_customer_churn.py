"""Generate examples/data/customer_churn.csv: a synthetic telecom churn table (deterministic).

Each row is a customer. The churn probability is a logistic function of the features (short
tenure, month-to-month contracts, fibre, electronic checks, many support calls and high charges
raise it; long contracts lower it) plus noise, so a model can learn it but not perfectly
(XGBoost reaches an F1 of about 0.75-0.8 on the "yes" class). A few values are missing, as in real
exports: ``total_charges`` of customers in their first month, and about 1 % of ``support_calls``
and ``payment_method``.

Usage:
    python examples/data/make_customer_churn.py [OUTPUT_CSV]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20240611
ROWS = 1500
OUTPUT = Path(__file__).with_name("customer_churn.csv")

CONTRACTS = ("month-to-month", "one-year", "two-year")
INTERNET = ("DSL", "Fiber optic", "No")
PAYMENTS = ("Electronic check", "Mailed check", "Bank transfer (automatic)", "Credit card (automatic)")


def make_customers(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Draw the customers' features.

    Args:
        rng: the random generator (seeded by the caller).
        rows: number of customers.

    Returns:
        Columns senior_citizen (0/1), tenure_months (0-72), contract, internet_service,
        payment_method, monthly_charges and total_charges (currency units), support_calls.
    """
    contract = rng.choice(CONTRACTS, size=rows, p=[0.55, 0.25, 0.20])
    mean_tenure = np.select([contract == "one-year", contract == "two-year"], [30.0, 50.0], 12.0)
    tenure = np.clip(np.round(rng.exponential(mean_tenure)), 0, 72).astype(int)
    internet = rng.choice(INTERNET, size=rows, p=[0.35, 0.45, 0.20])
    base = np.select([internet == "DSL", internet == "Fiber optic"], [50.0, 75.0], 20.0)
    monthly = np.round(np.clip(base + rng.normal(0, 12, rows), 18.0, 120.0), 2)
    total = np.round(tenure * monthly * rng.normal(1.0, 0.03, rows), 2)
    calls = rng.poisson(np.where(internet == "Fiber optic", 2.0, 1.2))
    return pd.DataFrame(
        {
            "senior_citizen": (rng.random(rows) < 0.16).astype(int),
            "tenure_months": tenure,
            "contract": contract,
            "internet_service": internet,
            "payment_method": rng.choice(PAYMENTS, size=rows, p=[0.35, 0.2, 0.225, 0.225]),
            "monthly_charges": monthly,
            "total_charges": total,
            "support_calls": calls,
        }
    )


def churn_probability(df: pd.DataFrame) -> np.ndarray:
    """Return each customer's probability of churning (a logistic model of the features).

    Args:
        df: the output of ``make_customers``.

    Returns:
        Probabilities in (0, 1), shape (rows,).
    """
    logit = (
        -4.0
        + 3.5 * (df["contract"] == "month-to-month")
        - 2.6 * (df["contract"] == "two-year")
        - 0.1 * df["tenure_months"]
        + 0.055 * (df["monthly_charges"] - 65)
        + 1.3 * (df["internet_service"] == "Fiber optic")
        + 1.5 * (df["payment_method"] == "Electronic check")
        + 1.0 * df["support_calls"]
        + 0.9 * df["senior_citizen"]
    )
    return 1 / (1 + np.exp(-logit.to_numpy(dtype=float)))


def with_missing_values(rng: np.random.Generator, df: pd.DataFrame) -> pd.DataFrame:
    """Blank total_charges in the first month and ~1 % of support_calls and payment_method.

    Args:
        rng: the random generator.
        df: the customers (not modified).

    Returns:
        A copy with missing values.
    """
    out = df.copy()
    out["total_charges"] = out["total_charges"].where(out["tenure_months"] > 0)
    out["support_calls"] = out["support_calls"].astype("Int64").mask(rng.random(len(out)) < 0.01)
    out["payment_method"] = out["payment_method"].mask(rng.random(len(out)) < 0.01)
    return out


def main(output: Path = OUTPUT) -> None:
    """Write the dataset as CSV (the same bytes on every run).

    Args:
        output: the CSV path.
    """
    rng = np.random.default_rng(SEED)
    customers = make_customers(rng, ROWS)
    churned = rng.random(ROWS) < churn_probability(customers)
    table = with_missing_values(rng, customers)
    table["churned"] = np.where(churned, "yes", "no")
    table.to_csv(output, index=False, lineterminator="\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUTPUT)
