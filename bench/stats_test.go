package main

import (
	"math"
	"slices"
	"testing"
	"time"
)

func same(a, b float64) bool {
	if math.IsNaN(a) || math.IsNaN(b) {
		return math.IsNaN(a) && math.IsNaN(b)
	}
	return math.Abs(a-b) < 1e-9
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name string
		xs   []float64
		p    float64
		want float64
	}{
		{"empty", nil, 50, nan},
		{"single median", []float64{7}, 50, 7},
		{"single p90", []float64{7}, 90, 7},
		{"odd median", []float64{3, 1, 2}, 50, 2},
		{"even median averages middle two", []float64{4, 1, 3, 2}, 50, 2.5},
		{"p0 is min", []float64{5, 9, 1}, 0, 1},
		{"p100 is max", []float64{5, 9, 1}, 100, 9},
		{"p90 of 1..10 interpolates", []float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 90, 9.1},
		{"p90 of 1..11 exact rank", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, 90, 10},
		{"p90 of 20 samples", seq(1, 20), 90, 18.1},
		{"duplicates", []float64{2, 2, 2, 2}, 90, 2},
		{"negative p", []float64{1, 2}, -1, nan},
		{"p over 100", []float64{1, 2}, 101, nan},
		{"NaN p", []float64{1, 2}, nan, nan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := slices.Clone(tc.xs)
			got := Percentile(tc.xs, tc.p)
			if !same(got, tc.want) {
				t.Errorf("Percentile(%v, %v) = %v, want %v", tc.xs, tc.p, got, tc.want)
			}
			if !slices.Equal(in, tc.xs) {
				t.Errorf("Percentile modified its input: %v became %v", in, tc.xs)
			}
		})
	}
}

func TestMedianAndP90(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		xs         []float64
		median, p9 float64
	}{
		{"two", []float64{10, 20}, 15, 19},
		{"outlier does not move the median", []float64{1, 2, 3, 4, 1000}, 3, 601.6},
		{"unsorted", []float64{135, 140, 131, 150, 128}, 135, 146},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Median(tc.xs); !same(got, tc.median) {
				t.Errorf("Median(%v) = %v, want %v", tc.xs, got, tc.median)
			}
			if got := P90(tc.xs); !same(got, tc.p9) {
				t.Errorf("P90(%v) = %v, want %v", tc.xs, got, tc.p9)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		xs   []float64
		want Summary
	}{
		{"empty", nil, Summary{Median: math.NaN(), P90: math.NaN(), Min: math.NaN(), Max: math.NaN()}},
		{"one", []float64{4}, Summary{N: 1, Median: 4, P90: 4, Min: 4, Max: 4}},
		{"five", []float64{5, 1, 4, 2, 3}, Summary{N: 5, Median: 3, P90: 4.6, Min: 1, Max: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := Summarize(tc.xs)
			if got.N != tc.want.N || !same(got.Median, tc.want.Median) || !same(got.P90, tc.want.P90) ||
				!same(got.Min, tc.want.Min) || !same(got.Max, tc.want.Max) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tc.xs, got, tc.want)
			}
		})
	}
}

func TestRatio(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	tests := []struct {
		name string
		a, b float64
		want float64
	}{
		{"half", 67, 134, 0.5},
		{"equal", 3, 3, 1},
		{"zero denominator", 1, 0, nan},
		{"negative denominator", 1, -1, nan},
		{"NaN numerator", nan, 1, nan},
		{"NaN denominator", 1, nan, nan},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Ratio(tc.a, tc.b); !same(got, tc.want) {
				t.Errorf("Ratio(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestMillis(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   []time.Duration
		want []float64
	}{
		{"empty", nil, []float64{}},
		{"mixed", []time.Duration{time.Millisecond, 1500 * time.Microsecond, 2 * time.Second}, []float64{1, 1.5, 2000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Millis(tc.in); !slices.Equal(got, tc.want) {
				t.Errorf("Millis(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func seq(from, to int) []float64 {
	var out []float64
	for i := from; i <= to; i++ {
		out = append(out, float64(i))
	}
	return out
}
