# A notebook cell of the kind pybox runs: load, clean, aggregate, plot.
import math
import json
from collections import defaultdict, Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

DATA_PATH = "data/sales_2024.csv"
REGIONS = ["north", "south", "east", "west"]
THRESHOLDS = {"low": 0.1, "mid": 0.5, "high": 0.9}


@dataclass
class Summary:
    region: str
    total: float = 0.0
    count: int = 0
    tags: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan

    def __repr__(self) -> str:
        return f"Summary({self.region!r}, total={self.total:,.2f}, mean={self.mean:.3f})"


def load(path: str, *, parse_dates: bool = True, usecols: Optional[list[str]] = None) -> pd.DataFrame:
    df = pd.read_csv(path, usecols=usecols, parse_dates=["date"] if parse_dates else False)
    df.columns = [c.strip().lower().replace(" ", "_") for c in df.columns]
    df = df.dropna(subset=["amount", "region"])
    df["amount"] = df["amount"].astype(float).clip(lower=0)
    df["month"] = df["date"].dt.to_period("M").astype(str)
    return df[df["region"].isin(REGIONS)].reset_index(drop=True)


def bucket(x: float, edges=(0, 10, 100, 1_000, 10_000)) -> str:
    for lo, hi in zip(edges, edges[1:]):
        if lo <= x < hi:
            return f"{lo}-{hi}"
    return f">={edges[-1]}"


def summarise(rows: Iterable[dict]) -> dict[str, Summary]:
    out: dict[str, Summary] = {}
    for row in rows:
        s = out.setdefault(row["region"], Summary(row["region"]))
        s.total += row["amount"]
        s.count += 1
        if row["amount"] > 5_000 and "big" not in s.tags:
            s.tags.append("big")
    return out


def zscores(values: np.ndarray) -> np.ndarray:
    mu, sigma = values.mean(), values.std(ddof=1)
    if sigma == 0 or np.isnan(sigma):
        return np.zeros_like(values)
    return (values - mu) / sigma


def top_n(counter: Counter, n: int = 5) -> list[tuple[str, int]]:
    return sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


df = load(DATA_PATH, usecols=["date", "region", "product", "amount", "customer"])
print(f"loaded {len(df):>8,} rows, {df['customer'].nunique()} customers")

monthly = (
    df.groupby(["month", "region"], as_index=False)
    .agg(total=("amount", "sum"), orders=("amount", "size"), avg=("amount", "mean"))
    .sort_values(["month", "region"])
)
monthly["share"] = monthly["total"] / monthly.groupby("month")["total"].transform("sum")
monthly["z"] = monthly.groupby("region")["total"].transform(lambda s: zscores(s.to_numpy()))

pivot = monthly.pivot_table(index="month", columns="region", values="total", aggfunc="sum", fill_value=0)
growth = pivot.pct_change().fillna(0.0)
best = {region: growth[region].idxmax() for region in pivot.columns if region in REGIONS}

summaries = summarise(df.to_dict("records"))
for name, s in sorted(summaries.items(), key=lambda kv: kv[1].total, reverse=True):
    flag = "*" if s.mean > THRESHOLDS["mid"] * df["amount"].max() else " "
    print(f"{flag} {name:<6} {s.total:>14,.2f} {s.count:>7d} {s.mean:>10.2f} {','.join(s.tags) or '-'}")

buckets = Counter(bucket(a) for a in df["amount"])
print("buckets:", ", ".join(f"{k}={v}" for k, v in top_n(buckets, 10)))

by_product = defaultdict(list)
for product, amount in zip(df["product"], df["amount"]):
    by_product[product].append(amount)

stats = {
    p: {
        "n": len(v),
        "mean": float(np.mean(v)),
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
    }
    for p, v in by_product.items()
    if len(v) >= 10
}
outliers = [p for p, st in stats.items() if st["p95"] > 3 * st["p50"] and st["n"] > 50]

customers = (
    df.assign(first=df.groupby("customer")["date"].transform("min"))
    .assign(cohort=lambda d: d["first"].dt.to_period("Q").astype(str))
    .groupby(["cohort", "month"])["customer"]
    .nunique()
    .unstack(fill_value=0)
)
retention = customers.div(customers.max(axis=1), axis=0).round(3)

fig, axes = plt.subplots(2, 2, figsize=(14, 9), sharex=False)
ax = axes[0][0]
for region in REGIONS:
    if region not in pivot:
        continue
    ax.plot(pivot.index, pivot[region], marker="o", label=region.title())
ax.set_title("Monthly revenue by region")
ax.set_ylabel("revenue (EUR)")
ax.legend(loc="upper left", frameon=False)
ax.tick_params(axis="x", rotation=45)

ax = axes[0][1]
shares = monthly[monthly["month"] == monthly["month"].max()]
ax.pie(shares["share"], labels=shares["region"], autopct=lambda pct: f"{pct:.1f}%" if pct > 3 else "")
ax.set_title(f"Share in {monthly['month'].max()}")

ax = axes[1][0]
names, values = zip(*top_n(Counter({p: st["n"] for p, st in stats.items()}), 8)) if stats else ((), ())
ax.barh(list(names), list(values), color=["tab:red" if n in outliers else "tab:blue" for n in names])
ax.invert_yaxis()
ax.set_title("Orders per product (top 8)")

ax = axes[1][1]
im = ax.imshow(retention.to_numpy(), aspect="auto", cmap="viridis", vmin=0, vmax=1)
ax.set_yticks(range(len(retention.index)), labels=retention.index)
ax.set_xticks(range(0, len(retention.columns), 3), labels=retention.columns[::3], rotation=45)
fig.colorbar(im, ax=ax, shrink=0.8)
ax.set_title("Cohort retention")

fig.tight_layout()
fig.savefig("report.png", dpi=120, bbox_inches="tight")
plt.close(fig)

report = {
    "rows": int(len(df)),
    "regions": {k: {"total": round(v.total, 2), "mean": round(v.mean, 2)} for k, v in summaries.items()},
    "best_month": best,
    "outliers": outliers,
    "buckets": dict(buckets.most_common()),
}
with open("report.json", "w", encoding="utf-8") as fh:
    json.dump(report, fh, indent=2, sort_keys=True, default=str)

try:
    corr = df.pivot_table(index="date", columns="region", values="amount", aggfunc="sum").corr()
except (KeyError, ValueError) as exc:
    print(f"correlation skipped: {exc}")
    corr = None
else:
    strongest = max(
        ((a, b, corr.loc[a, b]) for a in corr.columns for b in corr.columns if a < b),
        key=lambda t: abs(t[2]),
        default=None,
    )
    if strongest is not None:
        a, b, r = strongest
        print(f"strongest pair: {a}/{b} r={r:+.3f}")
finally:
    print("done", end="\n")

weekly = df.set_index("date").resample("W")["amount"].agg(["sum", "count"])
weekly["rolling"] = weekly["sum"].rolling(window=4, min_periods=1).mean()
spikes = weekly.loc[weekly["sum"] > 2 * weekly["rolling"], "sum"]
if not spikes.empty:
    print(f"{len(spikes)} spike weeks, largest {spikes.max():,.0f} on {spikes.idxmax():%Y-%m-%d}")
while len(outliers) > 3:
    outliers.pop()
assert all(isinstance(o, str) for o in outliers), "products are strings"
matrix = np.array([[1 if a == b else 0 for b in REGIONS] for a in REGIONS]) @ np.ones(len(REGIONS))
total = sum(s.total for s in summaries.values()) or 1.0
ratios = {k: v.total / total for k, v in summaries.items() if v.total}
print(json.dumps({"ratios": ratios, "diag": matrix.tolist()}, indent=None)[:200])


def describe(frame: pd.DataFrame, cols: list[str] | None = None) -> str:
    cols = cols or [c for c in frame.columns if frame[c].dtype.kind in "if"]
    parts = []
    for c in cols:
        s = frame[c]
        parts.append(f"{c}: n={s.count()} mean={s.mean():.2f} sd={s.std():.2f} [{s.min()}, {s.max()}]")
    return "\n".join(parts)


print(describe(monthly))
