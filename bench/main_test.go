package main

import "testing"

func TestRuntimeTargetsMet(t *testing.T) {
	fig := func(lifecycle, runDelete, create, start, state, del, rssMiB float64) *figures {
		s := func(v float64) Summary { return Summary{N: 1, Median: v, P90: v, Min: v, Max: v} }
		return &figures{Lifecycle: s(lifecycle), RunTotal: s(runDelete), Create: s(create), Start: s(start),
			State: s(state), Delete: s(del), CreateRSS: s(rssMiB)}
	}
	crun := fig(20, 15, 13, 3.2, 3.1, 3.4, 3.3)
	tests := []struct {
		name    string
		x, crun *figures
		want    map[string]bool
	}{
		{"all met", fig(14, 13, 8.8, 2.2, 2, 2.3, 4.5), crun, map[string]bool{
			"lifecycle_median": true, "run_delete_median": true, "create": true, "start": true, "state": true, "delete": true, "create_maxrss": true}},
		{"slow create, big", fig(22, 13, 15, 2.2, 2, 2.3, 5.5), crun, map[string]bool{
			"lifecycle_median": false, "run_delete_median": true, "create": false, "start": true, "state": true, "delete": true, "create_maxrss": false}},
		{"equal is met", fig(20, 15, 13, 3.2, 3.1, 3.4, 5), crun, map[string]bool{
			"lifecycle_median": true, "run_delete_median": true, "create": true, "start": true, "state": true, "delete": true, "create_maxrss": true}},
		{"no crun: only the RSS ceiling", fig(14, 13, 8.8, 2.2, 2, 2.3, 4.5), nil, map[string]bool{"create_maxrss": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runtimeTargetsMet(tt.x, tt.crun)
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s met = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}
