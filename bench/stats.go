package main

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample of measurements of one figure.
type Summary struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	P90    float64 `json:"p90"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// Percentile returns the p-th percentile (0 ≤ p ≤ 100) of xs, interpolating
// linearly between the two nearest ranks (the usual "type 7" definition, so
// the 50th percentile of an even-sized sample is the mean of the middle two).
// xs is not modified. It returns NaN for an empty sample or p out of range.
func Percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 || math.IsNaN(p) || p < 0 || p > 100 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := p / 100 * float64(len(s)-1)
	lo := int(math.Floor(rank))
	hi := int(math.Ceil(rank))
	if lo == hi {
		return s[lo]
	}
	frac := rank - float64(lo)
	return s[lo] + (s[hi]-s[lo])*frac
}

// Median returns the median of xs, or NaN if xs is empty.
func Median(xs []float64) float64 { return Percentile(xs, 50) }

// P90 returns the 90th percentile of xs, or NaN if xs is empty.
func P90(xs []float64) float64 { return Percentile(xs, 90) }

// Summarize returns the summary of xs. An empty sample gives N == 0 and NaN
// figures.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		nan := math.NaN()
		return Summary{Median: nan, P90: nan, Min: nan, Max: nan}
	}
	return Summary{
		N:      len(xs),
		Median: Median(xs),
		P90:    P90(xs),
		Min:    slices.Min(xs),
		Max:    slices.Max(xs),
	}
}

// Ratio returns a/b, or NaN when either is NaN or b is not positive.
func Ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b <= 0 {
		return math.NaN()
	}
	return a / b
}

// Millis converts durations to float milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}
