"""Quantiles from bucket counts, interval differences and Envoy's number formatting."""

from __future__ import annotations

import math

import pytest
from meshcore.admin.histogram import (
    SUPPORTED_PERCENTILES,
    Histogram,
    format_number,
    format_percentile_label,
    quantile,
    quantiles,
)


def hist(bounds: tuple[float, ...], counts: tuple[int, ...], total: float = 0.0) -> Histogram:
    return Histogram(bounds, counts, total, sum(counts))


def test_empty_histogram_has_no_quantiles():
    h = hist((1, 5), (0, 0, 0))
    assert all(math.isnan(v) for v in quantiles(h))


def test_single_bucket_interpolates_linearly_from_its_lower_edge():
    # 10 samples in (1, 5]: P0 is the lower edge, P100 the upper edge, P50 halfway.
    h = hist((1, 5, 10), (0, 10, 0, 0))
    assert quantile(h, 0) == 1
    assert quantile(h, 0.5) == 3
    assert quantile(h, 0.25) == 2
    assert quantile(h, 1) == 5


def test_first_bucket_starts_at_zero():
    h = hist((2, 4), (4, 0, 0))
    assert quantile(h, 0.5) == 1
    assert quantile(h, 0) == 0


def test_quantile_spanning_buckets():
    # 90 samples in (0, 10], 10 in (10, 100]: P90 is the top of the first bucket, P95 half
    # way up the second, P99 at 91.
    h = hist((10, 100), (90, 10, 0))
    assert quantile(h, 0.9) == 10
    assert quantile(h, 0.95) == pytest.approx(55)
    assert quantile(h, 0.99) == pytest.approx(91)


def test_empty_buckets_between_samples_are_skipped():
    h = hist((1, 2, 3, 4), (1, 0, 0, 1, 0))
    assert quantile(h, 0) == 0
    # The second half of the samples starts at the lower edge of the (3, 4] bucket.
    assert quantile(h, 0.75) == pytest.approx(3.5)
    assert quantile(h, 1) == 4


def test_overflow_bucket_reports_the_largest_bound():
    h = hist((1, 10), (1, 0, 3))
    assert quantile(h, 1) == 10
    assert quantile(h, 0.5) == 10
    assert quantile(h, 0) == 0


def test_quantiles_cover_envoys_percentiles():
    assert SUPPORTED_PERCENTILES == (0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100)
    h = hist((100,), (100, 0))
    assert quantiles(h) == pytest.approx([0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100])


def test_counts_must_match_bounds():
    with pytest.raises(ValueError, match="3 counts for 1 bounds"):
        Histogram((1.0,), (1, 2, 3), 0.0, 6)


def test_cumulative_counts_exclude_overflow():
    assert hist((1, 2, 3), (1, 2, 3, 4)).cumulative_counts() == [1, 3, 6]


def test_minus_gives_the_samples_since_an_earlier_reading():
    earlier = Histogram((1, 2), (1, 1, 0), 2.5, 2)
    later = Histogram((1, 2), (3, 1, 2), 20.0, 6)
    assert later.minus(earlier) == Histogram((1, 2), (2, 0, 2), 17.5, 4)


def test_minus_with_a_changed_layout_keeps_everything():
    earlier = Histogram((1,), (1, 0), 1.0, 1)
    later = Histogram((1, 2), (3, 1, 2), 20.0, 6)
    assert later.minus(earlier) is later


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0"),
        (10.5, "10.5"),
        (1.0333333333333334, "1.0333333333333334"),
        (3600000.0, "3600000"),
        (1e16, "1e+16"),
        (0.00001, "1e-05"),
        (math.nan, "nan"),
    ],
)
def test_format_number_matches_fmt(value, text):
    assert format_number(value) == text


def test_percentile_labels():
    labels = [format_percentile_label(p) for p in SUPPORTED_PERCENTILES]
    assert labels == ["P0", "P25", "P50", "P75", "P90", "P95", "P99", "P99.5", "P99.9", "P100"]
